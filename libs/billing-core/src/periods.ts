import { periodIndexAt, periodWindow } from '@billing/domain';
import type { SubscriptionRow } from '@billing/db';

/** The period in effect at `now`, in anchored arithmetic, within what has been paid. */
export function currentPeriod(
  sub: Pick<SubscriptionRow, 'anchor_at' | 'period' | 'paid_through'>,
  now: Date,
): { start: Date; end: Date } | null {
  if (!sub.anchor_at) return null;
  let k = Math.max(0, periodIndexAt(sub.anchor_at, sub.period, now));
  // A renewal paid ahead takes effect at the boundary; past what is paid, the last paid period stays in effect.
  if (sub.paid_through) {
    while (k > 0 && periodWindow(sub.anchor_at, sub.period, k).start.getTime() >= sub.paid_through.getTime()) k -= 1;
  }
  return periodWindow(sub.anchor_at, sub.period, k);
}
