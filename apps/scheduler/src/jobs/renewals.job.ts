import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { RenewalChargeRequested } from '@billing/contracts';
import type { Db } from '@billing/db';
import { periodIndexAt } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import type { Job } from '../runner.js';

const BATCH = 100;

/**
 * SPEC §8 renewals: an active subscription not ending at its period end, whose next period is
 * not yet paid, once now ≥ currentPeriodEnd − RENEWAL_LEAD_MS; a past_due one when its next
 * dunning retry is due. Each is claimed with FOR UPDATE SKIP LOCKED; the renewal payment and
 * the message that charges it are written in the claiming transaction, and (subscription,
 * period, attempt) is unique, so a replica killed mid-run leaves nothing half-done.
 */
export function renewalsJob(db: Db, leadMs: number): Job {
  return {
    name: 'renewals',
    async run(now) {
      let claimed = 0;
      for (;;) {
        const n = await db.transaction().execute(async (trx) => {
          const due = await trx.selectFrom('subscriptions as s').selectAll('s')
            .where('s.status', 'in', ['active', 'past_due']).where('s.cancel_at_period_end', '=', false)
            .where('s.anchor_at', 'is not', null).where('s.paid_through', '<=', new Date(now.getTime() + leadMs))
            .where((eb) => eb.or([
              eb.and([eb('s.status', '=', 'active'), eb('s.next_retry_at', 'is', null)]),
              eb.and([eb('s.next_retry_at', 'is not', null), eb('s.next_retry_at', '<=', now)]),
            ]))
            .where((eb) => eb.not(eb.exists(eb.selectFrom('payments as p').select('p.id').whereRef('p.subscription_id', '=', 's.id')
              .where('p.kind', '=', 'renewal').where('p.status', 'in', ['created', 'pending', 'approved']))))
            .orderBy('s.paid_through').limit(BATCH).forUpdate().skipLocked().execute();
          for (const sub of due) {
            const k = periodIndexAt(sub.anchor_at!, sub.period, sub.paid_through!);
            const attempts = await trx.selectFrom('payments').select((eb) => eb.fn.countAll<string>().as('n'))
              .where('subscription_id', '=', sub.id).where('period_index', '=', k).executeTakeFirstOrThrow();
            const paymentId = randomUUID();
            await trx.insertInto('payments').values({
              id: paymentId, subscription_id: sub.id, user_id: sub.user_id, kind: 'renewal', amount: sub.amount, currency: sub.currency,
              status: 'created', period_index: k, attempt: Number(attempts.n),
            }).execute();
            await trx.updateTable('subscriptions').set({ updated_at: sql`now()` }).where('id', '=', sub.id).execute();
            await enqueue(trx, RenewalChargeRequested, { paymentId });
          }
          return due.length;
        });
        claimed += n;
        if (n < BATCH) break;
      }
      return { due: claimed, claimed, succeeded: claimed, failed: 0 };
    },
  };
}
