import { sql, type Kysely, type Transaction } from 'kysely';
import { SubscriptionRenewalUpcoming } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { enqueueMany } from '@billing/messaging';
import { pricesOfPeriods } from './period-prices.js';
import { indexAt, windowOf } from './periods.js';
import { subscriptions } from './subscriptions.js';

// The use case "remind the buyer of a renewal" (docs/architecture.md, use cases; docs/scheduler.md,
// renewal reminders): `subscription.renewal_upcoming` once for each period an active subscription
// is about to renew into, with the amount the renewal will charge.

/** How long before a renewal the buyer hears of it (ISO 8601 durations, as Postgres reads them). */
export interface ReminderLeads {
  /** RENEWAL_REMINDER_LEAD: plans billed more often than yearly (P7D). */
  lead: string;
  /** RENEWAL_REMINDER_LEAD_YEARLY: plans billed yearly or longer (P15D). */
  yearlyLead: string;
}

const BATCH = 100;

/**
 * Every reminder due at `now`, in batches claimed with SKIP LOCKED: each batch's reminders, its
 * marks (`renewal_reminded_for`) and its messages in one transaction, so replicas never send one
 * twice. A reminder is due `lead` before `paid_through` (where the next charge falls), at half the
 * period when that is shorter, while `paid_through` is still ahead. How many were sent.
 */
export async function remindRenewals(db: Kysely<Database>, now: Date, leads: ReminderLeads): Promise<number> {
  let told = 0;
  for (;;) {
    const n = await db.transaction().execute(async (trx) => {
      const lead = sql`case when period::interval >= interval '1 year' then ${leads.yearlyLead}::interval else ${leads.lead}::interval end`;
      const due = await trx
        .selectFrom('subscriptions')
        .selectAll()
        .where('status', '=', 'active')
        .where('cancel_at_period_end', '=', false)
        .where('paid_through', '>', now)
        // The partial index on paid_through bounds the scan to what renews within the longer lead.
        .where(
          'paid_through',
          '<=',
          sql<Date>`${now}::timestamptz + greatest(${leads.lead}::interval, ${leads.yearlyLead}::interval)`,
        )
        .where((eb) =>
          eb.or([eb('renewal_reminded_for', 'is', null), eb('renewal_reminded_for', '<', eb.ref('paid_through'))]),
        )
        .where(sql<boolean>`paid_through - least(${lead}, period::interval / 2) <= ${now}`)
        .orderBy('paid_through')
        .limit(BATCH)
        .forUpdate()
        .skipLocked()
        .execute();
      if (due.length === 0) return 0;
      await enqueueMany(trx, SubscriptionRenewalUpcoming, await reminders(trx, due));
      for (const sub of due) await subscriptions.record(trx, sub, { renewal_reminded_for: sub.paid_through });
      return due.length;
    });
    told += n;
    if (n < BATCH) return told;
  }
}

/** What each reminder says: the period starting at `paid_through`, its plan and its price. */
async function reminders(trx: Transaction<Database>, due: SubscriptionRow[]) {
  const next = due.map((sub) => ({ sub, k: indexAt(sub, sub.paid_through!) }));
  const prices = await pricesOfPeriods(trx, next);
  // A downgrade scheduled by then is that period's plan (docs/api.md, plan changes).
  const switching = (sub: SubscriptionRow, start: Date) =>
    sub.scheduled_plan_id && sub.scheduled_change_at && start >= sub.scheduled_change_at ? sub.scheduled_plan_id : null;
  const ids = [...new Set(next.flatMap(({ sub, k }) => switching(sub, windowOf(sub, k).start) ?? []))];
  const names = new Map(
    ids.length
      ? (await trx.selectFrom('plans').select(['id', 'name']).where('id', 'in', ids).execute()).map((p) => [
          p.id,
          p.name,
        ])
      : [],
  );
  return next.map(({ sub, k }, i) => {
    const { start, end } = windowOf(sub, k);
    const planId = switching(sub, start) ?? sub.plan_id;
    return {
      userId: sub.user_id,
      subscriptionId: sub.id,
      planId,
      planName: planId === sub.plan_id ? sub.plan_name : (names.get(planId) ?? planId),
      amount: prices[i]!,
      currency: sub.currency,
      renewsAt: sub.paid_through!.toISOString(),
      periodEnd: end.toISOString(),
    };
  });
}
