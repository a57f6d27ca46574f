/** What a subscription pays for now, or would pay: a price per period. */
export interface PlanTerms {
  amount: number;
  period: string;
}

export type PlanChangeKind = 'upgrade' | 'period_change' | 'downgrade';

export interface PlanChangeQuote {
  kind: PlanChangeKind;
  /** Charged now through the vault (minor units); 0 for a downgrade. */
  amountDueNow: number;
  /** When the new plan takes over: now, or the period end for a downgrade. */
  effectiveAt: Date;
  /** The unused time of the current period, credited (a change of period length only). */
  credit: number;
  /** What of the credit exceeds the new price: refunded against the payments holding the time credited. */
  refundExcess: number;
}

/**
 * Periods already paid beyond the current one (a renewal charged ahead of the boundary): the
 * change covers them too (docs/guarantees.md, plan changes). `periods` whole periods, `paid` the
 * money held for them (after refunds), `end` the end of the last one (`paid_through`).
 */
export interface PaidAhead {
  periods: number;
  paid: number;
  end: Date;
}

/**
 * docs/api.md, plan changes, with `r` the milliseconds left in the current period and `T` its length,
 * all in BigInt (no float holds money):
 * - same period length, higher price: an upgrade now, `floor((new − old) × r / T)` due now;
 * - another period length: now, a new period starts; `new − floor(old × r / T)` due now, or 0
 *   with the excess credit refunded;
 * - same period length, lower or equal price: a downgrade at the period end, nothing due now.
 * Periods paid ahead count: an upgrade adds `new − old` for each, a change of period length
 * credits what was paid for them, and a downgrade waits for the end of the last one.
 * The preview and the change call this one function.
 */
export function quotePlanChange(
  current: PlanTerms,
  target: PlanTerms,
  period: { start: Date; end: Date },
  now: Date,
  ahead: PaidAhead = { periods: 0, paid: 0, end: period.end },
): PlanChangeQuote {
  const start = BigInt(period.start.getTime());
  const end = BigInt(period.end.getTime());
  const at = BigInt(now.getTime());
  const length = end > start ? end - start : 1n;
  const left = end > at ? (at > start ? end - at : length) : 0n;
  const oldAmount = BigInt(current.amount);
  const newAmount = BigInt(target.amount);
  if (current.period !== target.period) {
    const credit = (oldAmount * left) / length + BigInt(ahead.paid);
    const due = newAmount > credit ? newAmount - credit : 0n;
    const excess = credit > newAmount ? credit - newAmount : 0n;
    return {
      kind: 'period_change',
      amountDueNow: Number(due),
      effectiveAt: now,
      credit: Number(credit),
      refundExcess: Number(excess),
    };
  }
  if (newAmount > oldAmount)
    return {
      kind: 'upgrade',
      amountDueNow: Number(((newAmount - oldAmount) * left) / length + (newAmount - oldAmount) * BigInt(ahead.periods)),
      effectiveAt: now,
      credit: 0,
      refundExcess: 0,
    };
  const effectiveAt = ahead.periods > 0 && ahead.end > period.end ? ahead.end : period.end;
  return { kind: 'downgrade', amountDueNow: 0, effectiveAt, credit: 0, refundExcess: 0 };
}
