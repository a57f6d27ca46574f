import { periodIndexAt, periodWindow } from '@billing/domain';
import type { SubscriptionRow } from '@billing/db';

type Anchored = Pick<SubscriptionRow, 'anchor_at' | 'period' | 'anchor_index'>;

/**
 * Period k of a subscription: anchored arithmetic from `anchor_at`, which is the start of period
 * `anchor_index` (0, unless a change of period length started a new period: docs/api.md, plan changes).
 */
export function windowOf(sub: Anchored, k: number): { start: Date; end: Date } {
  return periodWindow(sub.anchor_at!, sub.period, k - sub.anchor_index);
}

/** The index of the period holding `t` (periods before the anchor are not counted back). */
export function indexAt(sub: Anchored, t: Date): number {
  return sub.anchor_index + periodIndexAt(sub.anchor_at!, sub.period, t);
}

/**
 * The period in effect at `now`, in anchored arithmetic, within what has been paid. During a free
 * trial (docs/api.md, free trials) that is the trial itself: the first paid period starts at its end.
 */
export function currentPeriod(
  sub: Pick<SubscriptionRow, 'anchor_at' | 'period' | 'paid_through' | 'anchor_index'> &
    Partial<Pick<SubscriptionRow, 'trial_start' | 'trial_end'>>,
  now: Date,
): { start: Date; end: Date } | null {
  if (!sub.anchor_at) return null;
  if (sub.trial_start && sub.trial_end && now < sub.trial_end) return { start: sub.trial_start, end: sub.trial_end };
  const first = sub.anchor_index;
  let k = Math.max(first, indexAt(sub, now));
  // A renewal paid ahead takes effect at the boundary; past what is paid, the last paid period stays in effect.
  if (sub.paid_through) {
    while (k > first && windowOf(sub, k).start.getTime() >= sub.paid_through.getTime()) k -= 1;
  }
  return windowOf(sub, k);
}
