import { randomUUID } from 'node:crypto';
import { RenewalChargeRequested } from '@billing/contracts';
import type { Db } from '@billing/db';
import { indexAt, payments, priceOfPeriod, subscriptions } from '@billing/billing-core';
import { HOLDING_MONEY, OPEN_PAYMENT_STATUSES } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import type { Job } from '../runner.js';

const BATCH = 100;

/**
 * docs/scheduler.md renewals: an active subscription not ending at its period end, whose next period is
 * not yet paid, once now ≥ currentPeriodEnd − RENEWAL_LEAD_MS; a trialing one at its trial's end
 * (its first period, charged like a renewal: SPEC section 11); a past_due one when its next
 * dunning retry is due. Each is claimed with FOR UPDATE SKIP LOCKED; the renewal payment and
 * the message that charges it are written in the claiming transaction, and (subscription,
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
          const due = await trx
            .selectFrom('subscriptions as s')
            .selectAll('s')
            .where('s.status', 'in', ['trialing', 'active', 'past_due'])
            .where('s.cancel_at_period_end', '=', false)
            .where('s.anchor_at', 'is not', null)
            .where('s.paid_through', '<=', new Date(now.getTime() + leadMs))
            .where((eb) =>
              eb.or([
                eb.and([eb('s.status', '=', 'active'), eb('s.next_retry_at', 'is', null)]),
                // A free trial's first period is charged at the trial's end, not ahead (SPEC section 11).
                eb.and([
                  eb('s.status', '=', 'trialing'),
                  eb('s.next_retry_at', 'is', null),
                  eb('s.paid_through', '<=', now),
                ]),
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
                    .where('p.status', 'in', [...OPEN_PAYMENT_STATUSES]),
                ),
              ),
            )
            .orderBy('s.paid_through')
            .limit(BATCH)
            .forUpdate()
            .skipLocked()
            .execute();
          let mine = 0;
          for (const sub of due) {
            const k = indexAt(sub, sub.paid_through!);
            // The scan above judged "no open renewal" on the statement's snapshot: a replica that
            // committed since then may have claimed this row already. With the row locked, this
            // statement's fresh snapshot sees every committed claim.
            const period = await trx
              .selectFrom('payments')
              .select((eb) => [
                eb.fn.countAll<string>().as('attempts'),
                eb.fn
                  .countAll<string>()
                  .filterWhere('status', 'in', [...OPEN_PAYMENT_STATUSES, ...HOLDING_MONEY])
                  .as('taken'),
              ])
              .where('subscription_id', '=', sub.id)
              .where('period_index', '=', k)
              .executeTakeFirstOrThrow();
            if (Number(period.taken) > 0) continue;
            const paymentId = randomUUID();
            await payments.create(trx, {
              id: paymentId,
              subscription_id: sub.id,
              user_id: sub.user_id,
              kind: 'renewal',
              // A downgrade scheduled for this period's start is charged at its new price.
              amount: await priceOfPeriod(trx, sub, k),
              currency: sub.currency,
              period_index: k,
              attempt: Number(period.attempts),
            });
            await subscriptions.touch(trx, sub.id);
            await enqueue(trx, RenewalChargeRequested, { paymentId });
            mine += 1;
          }
          return { scanned: due.length, mine };
        });
        claimed += mine;
        if (scanned < BATCH || mine === 0) break;
      }
      return { due: claimed, claimed, succeeded: claimed, failed: 0 };
    },
  };
}
