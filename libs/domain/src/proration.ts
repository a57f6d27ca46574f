export interface ProrationInput {
  /** What the payment charged, in minor units. */
  amount: number;
  /** What of it is neither refunded nor being refunded. */
  left: number;
  periodStart: Date;
  periodEnd: Date;
  cancelledAt: Date;
}

/**
 * docs/api.md: min(left, floor(amount × max(0, e − max(s, c)) / (e − s))), in BigInt so the
 * product of an amount and a duration in milliseconds never loses precision.
 */
export function proratedRefund({ amount, left, periodStart, periodEnd, cancelledAt }: ProrationInput): number {
  const s = BigInt(periodStart.getTime());
  const e = BigInt(periodEnd.getTime());
  const c = BigInt(cancelledAt.getTime());
  if (e <= s || left <= 0) return 0;
  const from = c > s ? c : s;
  const unused = e - from > 0n ? e - from : 0n;
  const due = (BigInt(amount) * unused) / (e - s);
  const capped = due < BigInt(left) ? due : BigInt(left);
  return Number(capped);
}
