import type { SubscriptionRow } from '@billing/db';

/** The data of `subscription.trial_started` and `subscription.trial_will_end` (SPEC section 11). */
export function trialNote(sub: SubscriptionRow) {
  return {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    role: sub.role,
    trialStart: sub.trial_start!.toISOString(),
    trialEnd: sub.trial_end!.toISOString(),
    amount: sub.amount,
    currency: sub.currency,
  };
}
