import type { Transaction } from 'kysely';
import { SubscriptionPaymentMethodRequired } from '@billing/contracts';
import type { Database, PaymentRow, SubscriptionRow } from '@billing/db';
import { periodWindow, type PaymentEvent } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { endCheckout } from './checkout.js';
import { recoveryUrlOf, type PaymentUseCaseContext } from './payment-context.js';
import { payments } from './payments.js';
import { planChangeFailed, planChangeOfPayment } from './change-plan.js';
import { recordRenewalFailure } from './renewals.js';
import { subscriptions } from './subscriptions.js';

// The use case "a payment of ours failed" (docs/architecture.md, use cases): a first payment ends
// its checkout, a renewal starts or continues dunning, a plan change's fails alone; and a renewal
// only the buyer can help waits for a new payment method.

type Tx = Transaction<Database>;

export type FailureCause =
  | 'declined'
  | 'provider_error'
  | 'capture_mismatch'
  | 'checkout_expired'
  | 'no_payment_method'
  | 'voided';

/**
 * The machine's failure `event` applied to the payment; when it moved it, what a
 * failed payment does follows (`paymentFailed`). Whether it moved (a stale or repeated event: nothing).
 */
export async function failWith(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  event: PaymentEvent,
  reason: FailureCause,
): Promise<boolean> {
  const t = await payments.transition(trx, p, event);
  if (t) await paymentFailed(ctx, trx, p, reason);
  return t !== null;
}

/**
 * The retries of a failed renewal, as delays from its first failure: the plan's own
 * `dunning_schedule` (ISO 8601 durations, counted in calendar arithmetic from `firstFailure`) when
 * an operator set one, else DUNNING_RETRY_MS (docs/scheduler.md, renewals and dunning).
 */
export async function dunningDelays(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  sub: Pick<SubscriptionRow, 'plan_id' | 'dunning_started_at'>,
  now: Date,
): Promise<readonly number[]> {
  const plan = await trx
    .selectFrom('plans')
    .select('dunning_schedule')
    .where('id', '=', sub.plan_id)
    .executeTakeFirst();
  if (!plan?.dunning_schedule?.length) return ctx.dunningRetryMs;
  const first = sub.dunning_started_at ?? now;
  return plan.dunning_schedule.map((d) => periodWindow(first, d, 0).end.getTime() - first.getTime());
}

/** A payment failed: an initial one cancels its subscription; a renewal starts or continues dunning. */
export async function paymentFailed(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  reason: FailureCause,
): Promise<void> {
  if (p.kind === 'upgrade') {
    // A failed plan change changes nothing but itself (docs/api.md, plan changes).
    const change = await planChangeOfPayment(trx, p.id);
    if (change) await planChangeFailed(trx, change, reason);
    return;
  }
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  if (p.kind === 'renewal') {
    const now = new Date();
    const delays = await dunningDelays(ctx, trx, sub, now);
    await recordRenewalFailure(trx, sub, reason, delays, now, recoveryUrlOf(ctx, sub.id, now));
    return;
  }
  await endCheckout(trx, sub);
}

/**
 * A renewal only the buyer can help (docs/api.md, …/payment-method): dunning is recorded as for
 * any failure, then the old method is not charged again (no retry time) until a new one is saved;
 * the subscription stays past_due until then or until the last retry's time, when it expires.
 */
export async function paymentMethodRequired(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  reason: 'no_payment_method' | 'payment_token_deleted' | 'payer_action_required',
  /** A hard decline (docs/paypal.md, declines) is told as one. */
  declined = false,
): Promise<void> {
  await paymentFailed(
    ctx,
    trx,
    p,
    reason === 'no_payment_method' ? 'no_payment_method' : declined ? 'declined' : 'provider_error',
  );
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  if (sub.status !== 'past_due') return;
  const first = sub.dunning_started_at ?? new Date();
  const delays = await dunningDelays(ctx, trx, sub, first);
  const last = delays[delays.length - 1] ?? 0;
  const told = sub.payment_method_required === reason;
  await subscriptions.record(trx, sub, {
    payment_method_required: reason,
    payment_method_deadline: new Date(first.getTime() + last),
    next_retry_at: null,
  });
  if (!told)
    await enqueue(trx, SubscriptionPaymentMethodRequired, {
      userId: sub.user_id,
      subscriptionId: sub.id,
      planId: sub.plan_id,
      planName: sub.plan_name,
      reason,
      recoveryUrl: recoveryUrlOf(ctx, sub.id, new Date()),
    });
}

/**
 * A payment that never reached PayPal, past its time (docs/scheduler.md, reconciliation; `p` locked
 * by the caller): a plan change's fails alone (the buyer may ask again; the subscription goes on as
 * it was), a checkout's ends its checkout at `now`. Whether it moved.
 */
export async function unsentPaymentExpired(trx: Tx, p: PaymentRow, now: Date): Promise<boolean> {
  if (!(await payments.transition(trx, p, { type: 'checkout_expired' }))) return false;
  if (p.kind === 'upgrade') {
    const change = await planChangeOfPayment(trx, p.id);
    if (change) await planChangeFailed(trx, change, 'expired: the charge was never made');
  } else await endCheckout(trx, await subscriptions.lockOrThrow(trx, p.subscription_id), now);
  return true;
}
