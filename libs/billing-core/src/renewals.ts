import type { Transaction } from 'kysely';
import {
  SubscriptionActivated,
  SubscriptionExpired,
  SubscriptionRenewalFailed,
  SubscriptionRenewed,
} from '@billing/contracts';
import type { Database, PaymentRow, SubscriptionRow } from '@billing/db';
import { enqueue } from '@billing/messaging';
import { endSubscriptionGrant } from './grants.js';
import { windowOf } from './periods.js';
import { payments } from './payments.js';
import { subscriptions } from './subscriptions.js';

type Tx = Transaction<Database>;

/** A renewal payment completed: the paid period is recorded; past_due goes back to active. */
export async function recordRenewalPaid(trx: Tx, sub: SubscriptionRow, p: PaymentRow): Promise<void> {
  const { start, end } = windowOf(sub, p.period_index);
  await payments.record(trx, p, { period_start: start, period_end: end });
  const paidThrough = !sub.paid_through || end > sub.paid_through ? end : sub.paid_through;
  const paid = { paid_through: paidThrough, dunning_started_at: null, dunning_attempts: 0, next_retry_at: null };
  // A trial's first period paid is the subscription's first payment: `subscription.activated` (SPEC section 7).
  const first = sub.trial_start !== null && p.period_index === 0;
  if (!(await subscriptions.transition(trx, sub, { type: 'renewal_completed' }, paid)))
    await subscriptions.record(trx, sub, paid);
  await enqueue(trx, first ? SubscriptionActivated : SubscriptionRenewed, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    role: sub.role,
    amount: p.amount,
    currency: p.currency,
    currentPeriodStart: start.toISOString(),
    currentPeriodEnd: end.toISOString(),
  });
}

/**
 * A renewal attempt failed (docs/scheduler.md): past_due with the grant kept, retry i at the first failure
 * + DUNNING_RETRY_MS[i]; after the last, expired (now if the period has ended, else at its end).
 */
export async function recordRenewalFailure(
  trx: Tx,
  sub: SubscriptionRow,
  reason: string,
  dunningRetryMs: readonly number[],
  now: Date,
): Promise<void> {
  if (sub.status !== 'active' && sub.status !== 'past_due' && sub.status !== 'trialing') return;
  const firstFailure = sub.dunning_started_at ?? now;
  const attempts = sub.dunning_attempts + 1;
  const delay = dunningRetryMs[attempts - 1];
  const nextRetryAt =
    delay !== undefined && !sub.cancel_at_period_end ? new Date(firstFailure.getTime() + delay) : null;
  const dunning = { dunning_started_at: firstFailure, dunning_attempts: attempts, next_retry_at: nextRetryAt };
  if (!(await subscriptions.transition(trx, sub, { type: 'renewal_failed' }, dunning)))
    await subscriptions.record(trx, sub, dunning);
  await enqueue(trx, SubscriptionRenewalFailed, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    amount: sub.amount,
    currency: sub.currency,
    reason,
    nextRetryAt: nextRetryAt?.toISOString() ?? null,
  });
  if (nextRetryAt) return;
  // The last try failed: the subscription ends with its paid time.
  if (sub.paid_through && sub.paid_through > now) {
    await subscriptions.transition(trx, sub, { type: 'cancel_at_period_end' });
    return;
  }
  await expire(trx, sub, now, 'dunning_exhausted');
}

/** The subscription becomes expired now and its grant ends. */
export async function expire(
  trx: Tx,
  sub: SubscriptionRow,
  now: Date,
  why: 'dunning_exhausted' | 'period_ended',
): Promise<boolean> {
  const t = await subscriptions.transition(trx, sub, { type: why }, { expired_at: now, next_retry_at: null });
  if (!t) return false;
  await endSubscriptionGrant(
    trx,
    sub,
    why === 'period_ended' ? 'subscription expired' : 'renewal failed after the last retry',
  );
  await enqueue(trx, SubscriptionExpired, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    role: sub.role,
    expiredAt: now.toISOString(),
  });
  return true;
}
