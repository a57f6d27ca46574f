import { isLive } from '@billing/domain';
import type { PlanChangeChargeRequested, RenewalChargeRequested } from '@billing/contracts';
import type { Db, PaymentRow } from '@billing/db';
import {
  CAPTURE_NEEDED,
  paidWithoutCharge,
  paymentFailed,
  paymentMethodRequired,
  payments,
  periodPaidByAnother,
  planChangeFailed,
  planChangeOfPayment,
  recordOrder,
  subscriptions,
  type PaymentUseCaseContext,
} from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import { ProviderRefusedError, type ChargeVaultedInput, type OrderState } from '@billing/payments';
import { answerOf, captureApproved } from '../payments/capture.js';
import { recordAnswer, type PaymentContext, type Tx } from '../payments/context.js';

/**
 * PayPal's refusals that only the buyer can resolve: a new wallet is needed, the old one is never
 * charged again. docs/paypal.md lists each with the PayPal page that documents it.
 */
const METHOD_GONE: Record<string, 'payment_token_deleted' | 'payer_action_required'> = {
  INVALID_PAYMENT_SOURCE: 'payment_token_deleted',
  INVALID_RESOURCE_ID: 'payment_token_deleted',
  AGREEMENT_ALREADY_CANCELLED: 'payment_token_deleted',
  PAYER_ACTION_REQUIRED: 'payer_action_required',
};

/** `payment.renewal.requested`: the scheduler claimed a renewal; charge the buyer's vaulted wallet. */
export function chargeRenewalHandler(ctx: PaymentContext): StepHandler<typeof RenewalChargeRequested> {
  return async ({ db, envelope, logger }) => {
    const outcome = await chargeRenewal(ctx, db, envelope.data.paymentId);
    logger.info('renewal charged', { paymentId: envelope.data.paymentId, outcome });
    // Counted once the step has committed: a retried step counts its final outcome only.
    if (outcome !== 'no-op') ctx.metrics?.renewalCharges.inc({ outcome: renewalOutcome(outcome) });
  };
}

/** The dunning outcome of a renewal charge, for `renewal_charges_total` (a small, fixed label set). */
export function renewalOutcome(outcome: string): string {
  if (outcome.startsWith('renewed') || outcome === 'completed' || outcome.startsWith('activated')) return 'paid';
  if (outcome === 'declined') return 'declined';
  if (outcome === 'no payment method') return 'no_payment_method';
  if (outcome.startsWith('refused')) return 'refused';
  if (outcome.includes('not charged')) return 'not_charged';
  if (outcome.startsWith('refunded')) return 'refunded';
  return 'pending';
}

/**
 * Charges a renewal payment with the vaulted PayPal wallet (a retry reuses the same request id):
 * decide under the payment's lock, charge with no transaction held, record under the lock again.
 */
export async function chargeRenewal(ctx: PaymentContext, db: Db, paymentId: string): Promise<string> {
  const decision = await recordAnswer(ctx, db, (trx, ctx) => decideCharge(ctx, trx, paymentId));
  return typeof decision === 'string' ? decision : chargeDecided(ctx, db, paymentId, decision);
}

/** The charge decided on, made and recorded (with the answers recorded at the same time, when the context batches them). */
export async function chargeDecided(
  ctx: PaymentContext,
  db: Db,
  paymentId: string,
  charge: ChargeVaultedInput,
): Promise<string> {
  const answer = await answerOf(ctx.provider.chargeVaulted(charge));
  const outcome = ctx.charges
    ? await ctx.charges.record(paymentId, answer)
    : await recordAnswer(ctx, db, (trx, ctx) => recordCharge(ctx, trx, paymentId, answer));
  return outcome === CAPTURE_NEEDED ? captureApproved(ctx, db, paymentId) : outcome;
}

/** PayPal's answer to a renewal (or plan change) charge, recorded under the payment's lock. */
export async function recordCharge(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  paymentId: string,
  answer: OrderState | ProviderRefusedError,
): Promise<string> {
  const p = await payments.lock(trx, { id: paymentId });
  if (!p) return 'no-op';
  if (answer instanceof ProviderRefusedError) {
    const declined = answer.issue === 'INSTRUMENT_DECLINED';
    const t = await payments.transition(
      trx,
      p,
      declined ? { type: 'capture_declined' } : { type: 'provider_failed', reason: 'provider_error' },
    );
    // Only the buyer can help a saved wallet PayPal no longer knows, or one that needs the payer.
    const needsBuyer = METHOD_GONE[answer.issue ?? ''];
    if (t && needsBuyer && p.kind === 'renewal') await paymentMethodRequired(ctx, trx, p, needsBuyer);
    else if (t) await paymentFailed(ctx, trx, p, declined ? 'declined' : 'provider_error');
    return declined ? 'declined' : `refused: ${answer.issue}`;
  }
  if (!p.provider_order_id) await payments.record(trx, p, { provider_order_id: answer.orderId });
  await payments.transition(trx, p, { type: 'order_created' });
  return recordOrder(ctx, trx, p, answer);
}

/** `payment.plan-change.requested`: billing-api accepted a plan change; charge its payment like a renewal. */
export function chargePlanChangeHandler(ctx: PaymentContext): StepHandler<typeof PlanChangeChargeRequested> {
  return async ({ db, envelope, logger }) => {
    const outcome = await chargeRenewal(ctx, db, envelope.data.paymentId);
    logger.info('plan change charged', { paymentId: envelope.data.paymentId, outcome });
  };
}

/** What a renewal (or plan change) charge request comes to: not charged (and why), or the charge to make. */
export async function decideCharge(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  paymentId: string,
): Promise<string | ChargeVaultedInput> {
  const p = await payments.lock(trx, { id: paymentId });
  if (!p || p.status !== 'created') return 'no-op';
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  if (p.kind === 'upgrade') {
    const change = await planChangeOfPayment(trx, p.id);
    if (!change || change.status !== 'pending' || sub.status !== 'active' || !sub.vault_id) {
      await payments.transition(trx, p, { type: 'subscription_ended' });
      if (change) await planChangeFailed(trx, change, `subscription ${sub.status}`);
      return 'plan change no longer applies: not charged';
    }
    return vaultCharge(p, sub.vault_id, `${sub.plan_name} → ${change.to_plan_id}: plan change`);
  }
  if (!isLive(sub.status)) {
    await payments.transition(trx, p, { type: 'subscription_ended' });
    return `subscription ${sub.status}: not charged`;
  }
  if (sub.cancel_at_period_end) {
    // The buyer (or a lost payment method) ended renewals after this one was queued.
    await payments.transition(trx, p, { type: 'buyer_cancelled' });
    return 'subscription ends at its period end: not charged';
  }
  if (await periodPaidByAnother(trx, p)) {
    await payments.transition(trx, p, { type: 'superseded' });
    return 'period already paid: not charged';
  }
  // A period a coupon made free needs neither PayPal nor a wallet (docs/api.md, coupons at checkout).
  if (p.amount === 0 && p.kind === 'renewal') return paidWithoutCharge(ctx, trx, p, null);
  if (!sub.vault_id) {
    await payments.transition(trx, p, { type: 'provider_failed', reason: 'no_payment_method' });
    if (p.kind === 'renewal')
      await paymentMethodRequired(ctx, trx, p, sub.payment_method_required ?? 'no_payment_method');
    else await paymentFailed(ctx, trx, p, 'no_payment_method');
    return 'no payment method';
  }
  return vaultCharge(p, sub.vault_id, `${sub.plan_name} renewal`);
}

/** The charge of a payment to a saved wallet; a retry reuses its PayPal-Request-Id. */
export function vaultCharge(
  p: Pick<PaymentRow, 'id' | 'amount' | 'currency'>,
  vaultId: string,
  description: string,
): ChargeVaultedInput {
  return {
    paymentId: p.id,
    amount: p.amount,
    currency: p.currency,
    description,
    vaultId,
    idempotencyKey: `${p.id}:charge`,
  };
}
