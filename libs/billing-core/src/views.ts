import { periodIndexAt, periodWindow } from '@billing/domain';
import type { PaymentRow, SubscriptionRow } from '@billing/db';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

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

export function subscriptionView(sub: SubscriptionRow, now = new Date()) {
  const period = sub.status === 'pending' ? null : currentPeriod(sub, now);
  return {
    id: sub.id,
    planId: sub.plan_id,
    role: sub.role,
    status: sub.status,
    amount: sub.amount,
    currency: sub.currency.trim(),
    period: sub.period,
    currentPeriodStart: iso(period?.start ?? null),
    currentPeriodEnd: iso(period?.end ?? null),
    cancelAtPeriodEnd: sub.cancel_at_period_end,
    cancelledAt: sub.status === 'cancelled' ? iso(sub.cancelled_at) : null,
    approvalUrl: sub.status === 'pending' ? sub.approval_url : null,
    createdAt: sub.created_at.toISOString(),
  };
}

export function paymentView(p: PaymentRow) {
  return {
    id: p.id,
    subscriptionId: p.subscription_id,
    kind: p.kind,
    amount: p.amount,
    currency: p.currency.trim(),
    status: p.status,
    refundedAmount: p.refunded_amount,
    failureReason: p.failure_reason,
    periodStart: iso(p.period_start),
    periodEnd: iso(p.period_end),
    createdAt: p.created_at.toISOString(),
  };
}
