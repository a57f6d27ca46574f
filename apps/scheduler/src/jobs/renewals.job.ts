import type { Transaction } from 'kysely';
import type { Database, Db } from '@billing/db';
import { claimRenewals } from '@billing/billing-core';
import { LIVE_STATUSES, OPEN_PAYMENT_STATUSES } from '@billing/domain';
import type { Job } from '../runner.js';

/** Subscriptions claimed per transaction (set-based: seven statements whatever the number). */
const BATCH = 500;

/**
 * docs/scheduler.md renewals: an active subscription not ending at its period end, whose next period is
 * not yet paid, once now ≥ currentPeriodEnd − RENEWAL_LEAD_MS; a trialing one at its trial's end
 * (its first period, charged like a renewal: docs/api.md, free trials); a past_due one when its next
 * dunning retry is due. Up to BATCH are claimed at once with FOR UPDATE SKIP LOCKED; their
 * renewal payments and the messages that charge them are written in the claiming transaction,
 * set-based (billing-core's `claimRenewals`), and (subscription,
 * period, attempt) is unique, so a replica killed mid-run leaves nothing half-done. A unique
 * index allows one open renewal payment per subscription and period, whatever the replicas do.
 */
export function renewalsJob(db: Db, leadMs: number): Job {
  return {
    name: 'renewals',
    async run(now) {
      let claimed = 0;
      for (;;) {
        const { scanned, mine } = await db.transaction().execute(async (trx) => {
          const due = await dueForRenewal(trx, now, leadMs).execute();
          const mine = await claimRenewals(trx, due);
          return { scanned: due.length, mine };
        });
        claimed += mine;
        if (scanned < BATCH || mine === 0) break;
      }
      return { due: claimed, claimed, succeeded: claimed, failed: 0 };
    },
  };
}

/**
 * The scan for due renewals (docs/scheduler.md renewals), up to BATCH, locked with SKIP LOCKED.
 * "No open renewal payment" is probed per subscription through the open-renewal index (the
 * `offset 0` keeps the planner from turning it into a join): while a backlog is being charged
 * every due subscription has one, and a join planned on stale statistics (a table that grew fast
 * since its last ANALYZE) compared each due subscription with every open payment, seconds per
 * scan at 10,000, three replicas scanning twice a second.
 */
export function dueForRenewal(trx: Transaction<Database>, now: Date, leadMs: number) {
  return trx
    .selectFrom('subscriptions as s')
    .selectAll('s')
    .where('s.status', 'in', [...LIVE_STATUSES])
    .where('s.cancel_at_period_end', '=', false)
    .where('s.anchor_at', 'is not', null)
    .where('s.paid_through', '<=', new Date(now.getTime() + leadMs))
    .where((eb) =>
      eb.or([
        eb.and([eb('s.status', '=', 'active'), eb('s.next_retry_at', 'is', null)]),
        // A free trial's first period is charged at the trial's end, not ahead (docs/api.md, free trials).
        eb.and([eb('s.status', '=', 'trialing'), eb('s.next_retry_at', 'is', null), eb('s.paid_through', '<=', now)]),
        eb.and([eb('s.next_retry_at', 'is not', null), eb('s.next_retry_at', '<=', now)]),
      ]),
    )
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('payments as p')
            .select('p.id')
            .whereRef('p.subscription_id', '=', 's.id')
            .where('p.kind', '=', 'renewal')
            .where('p.status', 'in', [...OPEN_PAYMENT_STATUSES])
            .offset(0),
        ),
      ),
    )
    .orderBy('s.paid_through')
    .limit(BATCH)
    .forUpdate()
    .skipLocked();
}
