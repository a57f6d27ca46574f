import { Type } from 'typebox';
import { monthlyAmount } from './stats.js';
import type { AdminPlugin } from './index.js';
import { errors } from './schemas.js';

// Revenue analytics (docs/admin.md, revenue): MRR at the price actually charged and its movements
// per month, from the completed first payments and renewals.

/** A payment that holds a period: what it charged, for which subscription, on what period length. */
export interface PaidPeriod {
  subscriptionId: string;
  currency: string;
  amount: number;
  period: string;
  start: Date;
  end: Date;
}

export interface RevenueMonth {
  month: string;
  mrr: number;
  new: number;
  expansion: number;
  contraction: number;
  churn: number;
  reactivation: number;
  /** Churned MRR over the MRR at the month's start, in percent (one decimal); null when that was 0. */
  churnRate: number | null;
}

/** A pause of a subscription (docs/api.md, pause): no MRR from `from` until `to` (null: still paused). */
export interface PausedSpan {
  subscriptionId: string;
  from: Date;
  to: Date | null;
}

/**
 * MRR and its movements for the `months` months ending with the one holding `now`, per currency;
 * a subscription paused at an instant counts nothing then.
 */
export function revenueMovements(
  paid: readonly PaidPeriod[],
  now: Date,
  months = 12,
  pauses: readonly PausedSpan[] = [],
): { currency: string; months: RevenueMonth[] }[] {
  const ends: Date[] = [];
  for (let i = months; i >= 0; i--) {
    const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i + 1, 1) - 1);
    ends.push(end > now ? now : end);
  }
  const bySub = new Map<string, PaidPeriod[]>();
  for (const p of paid) {
    const ps = bySub.get(p.subscriptionId);
    if (ps) ps.push(p);
    else bySub.set(p.subscriptionId, [p]);
  }
  const currencies = [...new Set(paid.map((p) => p.currency))].sort();
  return currencies.map((currency) => {
    const subs = [...bySub.values()].filter((ps) => ps[0]!.currency === currency);
    const mrrAt = (ps: PaidPeriod[], t: Date) => {
      const sub = ps[0]!.subscriptionId;
      if (pauses.some((x) => x.subscriptionId === sub && x.from <= t && (!x.to || t < x.to))) return 0;
      const p = ps.find((x) => x.start <= t && t < x.end);
      return p ? monthlyAmount(p.amount, p.period) : 0;
    };
    const rows: RevenueMonth[] = [];
    for (let m = 1; m < ends.length; m++) {
      const [from, to] = [ends[m - 1]!, ends[m]!];
      const row: RevenueMonth = {
        month: to.toISOString().slice(0, 7),
        mrr: 0,
        new: 0,
        expansion: 0,
        contraction: 0,
        churn: 0,
        reactivation: 0,
        churnRate: null,
      };
      let before = 0;
      for (const ps of subs) {
        const [a, b] = [mrrAt(ps, from), mrrAt(ps, to)];
        before += a;
        row.mrr += b;
        if (a === 0 && b > 0) {
          if (ps.some((p) => p.start <= from)) row.reactivation += b;
          else row.new += b;
        } else if (a > 0 && b === 0) row.churn += a;
        else if (b > a) row.expansion += b - a;
        else if (b < a) row.contraction += a - b;
      }
      row.churnRate = before > 0 ? Math.round((row.churn * 1000) / before) / 10 : null;
      rows.push(row);
    }
    return { currency, months: rows };
  });
}

const Month = Type.Object({
  month: Type.String(),
  mrr: Type.Integer(),
  new: Type.Integer(),
  expansion: Type.Integer(),
  contraction: Type.Integer(),
  churn: Type.Integer(),
  reactivation: Type.Integer(),
  churnRate: Type.Union([Type.Number(), Type.Null()]),
});
export const Revenue = Type.Object({
  at: Type.String(),
  currencies: Type.Array(Type.Object({ currency: Type.String(), months: Type.Array(Month) })),
});

/** The last 13 months' paid periods read once, movements computed here (a few rows per subscription). */
export const revenueApi: AdminPlugin = async (api, { rt }) => {
  api.get('/revenue', { schema: { tags: ['admin'], response: { 200: Revenue, ...errors } } }, async () => {
    const now = new Date();
    const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 13, 1));
    const rows = await rt.db
      .selectFrom('payments as p')
      .innerJoin('subscriptions as s', 's.id', 'p.subscription_id')
      .select(['p.subscription_id', 'p.currency', 'p.amount', 's.period', 'p.period_start', 'p.period_end'])
      .where('p.kind', 'in', ['initial', 'renewal'])
      .where('p.status', 'in', ['completed', 'partially_refunded'])
      .where('p.period_start', 'is not', null)
      .where('p.period_end', '>', since)
      .execute();
    const pauses = await rt.db
      .selectFrom('subscription_pauses')
      .select(['subscription_id', 'paused_at', 'resumed_at'])
      .where((eb) => eb.or([eb('resumed_at', 'is', null), eb('resumed_at', '>', since)]))
      .execute();
    const paid = rows.map((r) => ({
      subscriptionId: r.subscription_id,
      currency: r.currency,
      amount: r.amount,
      period: r.period,
      start: r.period_start!,
      end: r.period_end!,
    }));
    return {
      at: now.toISOString(),
      currencies: revenueMovements(
        paid,
        now,
        12,
        pauses.map((x) => ({ subscriptionId: x.subscription_id, from: x.paused_at, to: x.resumed_at })),
      ),
    };
  });
};
