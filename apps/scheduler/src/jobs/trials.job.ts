import { SubscriptionTrialWillEnd } from '@billing/contracts';
import type { Db } from '@billing/db';
import { subscriptions, trialNote } from '@billing/billing-core';
import { enqueue } from '@billing/messaging';
import type { Job } from '../runner.js';

const BATCH = 100;

/**
 * docs/api.md, free trials: `subscription.trial_will_end` once a trial's notice time has come (3 days before
 * its end, half the trial when shorter than 6 days), once per trial: claimed with SKIP LOCKED and
 * marked sent in the transaction that writes the message, so replicas never send it twice. A trial
 * set to end at its end is not told it will convert.
 */
export function trialsJob(db: Db): Job {
  return {
    name: 'trials',
    async run(now) {
      let told = 0;
      for (;;) {
        const n = await db.transaction().execute(async (trx) => {
          const due = await trx
            .selectFrom('subscriptions')
            .selectAll()
            .where('status', '=', 'trialing')
            .where('trial_notice_sent_at', 'is', null)
            .where('trial_notice_at', '<=', now)
            .where('cancel_at_period_end', '=', false)
            .orderBy('trial_notice_at')
            .limit(BATCH)
            .forUpdate()
            .skipLocked()
            .execute();
          for (const sub of due) {
            await subscriptions.record(trx, sub, { trial_notice_sent_at: now });
            await enqueue(trx, SubscriptionTrialWillEnd, trialNote(sub));
          }
          return due.length;
        });
        told += n;
        if (n < BATCH) break;
      }
      return { due: told, claimed: told, succeeded: told, failed: 0 };
    },
  };
}
