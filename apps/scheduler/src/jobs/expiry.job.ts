import { LIVE_STATUSES } from '@billing/domain';
import type { Db } from '@billing/db';
import { expire } from '@billing/billing-core';
import type { Job } from '../runner.js';

/** docs/scheduler.md expiry: a subscription set to end at its period end whose period has ended becomes expired. */
export function expiryJob(db: Db): Job {
  return {
    name: 'expiry',
    async run(now) {
      let done = 0;
      for (;;) {
        const n = await db.transaction().execute(async (trx) => {
          const due = await trx
            .selectFrom('subscriptions')
            .selectAll()
            .where('status', 'in', [...LIVE_STATUSES])
            .where('cancel_at_period_end', '=', true)
            .where('paid_through', '<=', now)
            .limit(100)
            .forUpdate()
            .skipLocked()
            .execute();
          for (const sub of due) await expire(trx, sub, now, 'period_ended');
          // Waiting for a new payment method past the last dunning retry's time (docs/api.md, …/payment-method).
          const waited = await trx
            .selectFrom('subscriptions')
            .selectAll()
            .where('status', '=', 'past_due')
            .where('payment_method_deadline', '<=', now)
            .limit(100)
            .forUpdate()
            .skipLocked()
            .execute();
          for (const sub of waited) await expire(trx, sub, now, 'dunning_exhausted');
          return due.length + waited.length;
        });
        done += n;
        if (n < 100) break;
      }
      return { due: done, claimed: done, succeeded: done, failed: 0 };
    },
  };
}
