import { currentPeriod } from '@billing/billing-core';
import type { PaymentRow, PlanRow, SubscriptionRow } from '@billing/db';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function subscriptionView(sub: SubscriptionRow, now = new Date()) {
  const period = sub.status === 'pending' ? null : currentPeriod(sub, now);
  return {
    id: sub.id,
    planId: sub.plan_id,
    role: sub.role,
    status: sub.status,
    amount: sub.amount,
    currency: sub.currency,
    period: sub.period,
    currentPeriodStart: iso(period?.start ?? null),
    currentPeriodEnd: iso(period?.end ?? null),
    cancelAtPeriodEnd: sub.cancel_at_period_end,
    cancelledAt: sub.status === 'cancelled' ? iso(sub.cancelled_at) : null,
    approvalUrl: sub.status === 'pending' ? sub.approval_url : null,
    scheduledChange:
      sub.scheduled_plan_id && sub.scheduled_change_at
        ? { planId: sub.scheduled_plan_id, effectiveAt: sub.scheduled_change_at.toISOString() }
        : null,
    trialStart: iso(sub.trial_start),
    trialEnd: iso(sub.trial_end),
    pausedAt: sub.status === 'paused' ? iso(sub.paused_at) : null,
    resumesAt: sub.status === 'paused' ? iso(sub.resumes_at) : null,
    createdAt: sub.created_at.toISOString(),
  };
}

export function paymentView(p: PaymentRow) {
  return {
    id: p.id,
    subscriptionId: p.subscription_id,
    kind: p.kind,
    amount: p.amount,
    currency: p.currency,
    status: p.status,
    refundedAmount: p.refunded_amount,
    failureReason: p.failure_reason,
    periodStart: iso(p.period_start),
    periodEnd: iso(p.period_end),
    createdAt: p.created_at.toISOString(),
  };
}

/** A plan as buyers see it (`GET /v1/plans`). */
export function publicPlanView(p: PlanRow) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    amount: p.amount,
    currency: p.currency,
    period: p.period,
    role: p.role,
    trialPeriod: p.trial_period,
  };
}

/** A plan as operators see it: whether it is on sale too. */
export function planView(p: PlanRow) {
  return { ...publicPlanView(p), active: p.active, dunningSchedule: p.dunning_schedule, maxPause: p.max_pause };
}
