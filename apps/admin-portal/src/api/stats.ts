import { sql } from 'kysely';
import { LIVE_STATUSES, parsePeriod } from '@billing/domain';
import type { AdminPlugin } from './index.js';
import { errors, Stats } from './schemas.js';

const MONTH_MS = 30n * 86_400_000n;
const UNIT_MS = { W: 7n * 86_400_000n, D: 86_400_000n, H: 3_600_000n, MIN: 60_000n, S: 1_000n } as const;

/** A price per period as a monthly amount (minor units, rounded down; BigInt, no float holds money). */
export function monthlyAmount(amount: number, period: string): number {
  const p = parsePeriod(period);
  if (!p) return 0;
  const a = BigInt(amount);
  const c = BigInt(p.count);
  if (p.unit === 'Y') return Number(a / (12n * c));
  if (p.unit === 'M') return Number(a / c);
  return Number((a * MONTH_MS) / (c * UNIT_MS[p.unit]));
}

/** The home dashboard's figures: one round of queries, this month counted from the 1st, UTC. */
export const statsApi: AdminPlugin = async (api, { rt }) => {
  api.get('/stats', { schema: { tags: ['admin'], response: { 200: Stats, ...errors } } }, async () => {
    const now = new Date();
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 89));
    const db = rt.db;
    // When a payment was taken: its period's start for a first payment, else its last update
    // (a renewal paid ahead starts its period later than it was paid).
    const paidAt = sql`least(coalesce(period_start, updated_at), updated_at)`;
    const [live, counts, failed, refunded, revenue, byPlan, reasons, retention] = await Promise.all([
      db
        .selectFrom('subscriptions')
        .select(['amount', 'currency', 'period', 'status'])
        .where('status', 'in', [...LIVE_STATUSES])
        .execute(),
      db
        .selectFrom('subscriptions')
        .select((eb) => [
          eb.fn.countAll<string>().filterWhere('anchor_at', '>=', monthStart).as('new'),
          // Churned: was paid for (has an anchor) and ended this month, by cancel or expiry.
          eb.fn
            .countAll<string>()
            .filterWhere((w) =>
              w.and([
                w('anchor_at', 'is not', null),
                // a trial that never converted was never paid for
                w('paid_through', '>', w.ref('anchor_at')),
                w.or([w('cancelled_at', '>=', monthStart), w('expired_at', '>=', monthStart)]),
              ]),
            )
            .as('churned'),
        ])
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('payments')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('status', '=', 'failed')
        .where('updated_at', '>=', monthStart)
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('refunds')
        .select(['currency', (eb) => eb.fn.sum<string>('amount').as('amount')])
        .where('status', '=', 'completed')
        .where('updated_at', '>=', monthStart)
        .groupBy('currency')
        .execute(),
      db
        .selectFrom('payments')
        .select([
          sql<string>`to_char(${paidAt} at time zone 'UTC', 'YYYY-MM-DD')`.as('day'),
          'currency',
          (eb) => eb.fn.sum<string>('amount').as('amount'),
        ])
        .where('status', 'in', ['completed', 'partially_refunded', 'refunded'])
        .where(sql<boolean>`${paidAt} >= ${since}`)
        .groupBy(['day', 'currency'])
        .orderBy('day')
        .execute(),
      db
        .selectFrom('subscriptions')
        .select([
          'plan_id',
          (eb) =>
            eb.fn
              .countAll<string>()
              .filterWhere('status', 'in', [...LIVE_STATUSES])
              .as('active'),
          (eb) => eb.fn.countAll<string>().as('total'),
        ])
        .groupBy('plan_id')
        .orderBy('plan_id')
        .execute(),
      // docs/api.md, cancel: the reasons buyers gave, for what ended this month or is set to end.
      db
        .selectFrom('subscriptions')
        .select(['cancel_reason', (eb) => eb.fn.countAll<string>().as('n')])
        .where('cancel_reason', 'is not', null)
        .where((w) =>
          w.or([
            w('cancelled_at', '>=', monthStart),
            w('expired_at', '>=', monthStart),
            w.and([w('cancel_at_period_end', '=', true), w('status', 'in', [...LIVE_STATUSES])]),
          ]),
        )
        .groupBy('cancel_reason')
        .orderBy('n', 'desc')
        .execute(),
      // docs/api.md, retention offer: offers made this month, and how many of them were accepted.
      db
        .selectFrom('subscriptions')
        .select([
          (eb) => eb.fn.countAll<string>().as('offered'),
          (eb) => eb.fn.count<string>('retention_accepted_at').as('accepted'),
        ])
        .where('retention_offered_at', '>=', monthStart)
        .executeTakeFirstOrThrow(),
    ]);
    const mrr = new Map<string, number>();
    for (const s of live)
      if (s.status !== 'trialing') mrr.set(s.currency, (mrr.get(s.currency) ?? 0) + monthlyAmount(s.amount, s.period));
    return {
      at: now.toISOString(),
      activeSubscriptions: live.filter((s) => s.status === 'active').length,
      mrr: [...mrr].map(([currency, amount]) => ({ currency, amount })).sort((a, b) => b.amount - a.amount),
      newThisMonth: Number(counts.new),
      churnedThisMonth: Number(counts.churned),
      inDunning: live.filter((s) => s.status === 'past_due').length,
      inTrial: live.filter((s) => s.status === 'trialing').length,
      failedPaymentsThisMonth: Number(failed.n),
      refundedThisMonth: refunded.map((r) => ({ currency: r.currency, amount: Number(r.amount) })),
      revenuePerDay: revenue.map((r) => ({ day: r.day, currency: r.currency, amount: Number(r.amount) })),
      subscriptionsByPlan: byPlan.map((p) => ({ planId: p.plan_id, active: Number(p.active), total: Number(p.total) })),
      cancelReasonsThisMonth: reasons.map((r) => ({ reason: r.cancel_reason!, count: Number(r.n) })),
      retentionThisMonth: { offered: Number(retention.offered), accepted: Number(retention.accepted) },
    };
  });
};
