import type { Transaction } from 'kysely';
import type { Database, PaymentRow } from '@billing/db';
import { isLive } from '@billing/domain';
import type { ChargeVaultedInput } from '@billing/payments';
import {
  paidWithoutCharge,
  recordOrder,
  periodPaidByAnother,
  type OrderSeen,
  type PaidOutcome,
  type PaymentOutcome,
} from './on-payment-event.js';
import type { PaymentUseCaseContext } from './payment-context.js';
import { paymentFailed, paymentMethodRequired } from './payment-failed.js';
import { payments } from './payments.js';
import { planChangeFailed, planChangeOfPayment } from './change-plan.js';
import { subscriptions } from './subscriptions.js';

// The use case "charge a period to the buyer's saved wallet" (docs/architecture.md, use cases;
// docs/scheduler.md): a renewal (or a plan change's payment) the scheduler claimed is decided
// under the payment's lock (`decideCharge`: not charged and why, or the charge to make); the
// caller charges PayPal with no transaction held and hands the answer to `recordCharge`.

type Tx = Transaction<Database>;

/** PayPal refused the charge (a 4xx: its final word); the payments lib's ProviderRefusedError is one. */
export interface ChargeRefusal extends Error {
  issue: string | null;
}

/** Why a claimed charge was not made: its payment ended without PayPal. */
export type NotCharged =
  | 'plan change no longer applies: not charged'
  | `subscription ${string}: not charged`
  | 'subscription ends at its period end: not charged'
  | 'period already paid: not charged';

/** What a renewal (or plan change) charge came to. */
export type ChargeOutcome =
  | NotCharged
  | PaymentOutcome
  | 'no payment method'
  | `refused: ${string}`
  /** The window's set-based path: a completed capture for a live subscription. */
  | 'renewed'
  /** PayPal answered the charge APPROVED and the capture that followed found nothing left to do. */
  | 'no capture needed';

/** `renewal_charges_total`'s labels (docs/operations.md): a small, fixed set. */
export type RenewalMetric =
  | 'paid'
  | 'declined'
  | 'no_payment_method'
  | 'refused'
  | 'not_charged'
  | 'refunded'
  | 'pending';

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

/**
 * PayPal's declines (docs/paypal.md, declines): a soft one may pass on a later try, so dunning
 * follows its schedule; a hard one only the buyer can clear, so dunning stops at once and the buyer
 * is asked for a new method, as for a wallet PayPal no longer knows.
 */
const DECLINES: Record<string, 'soft' | 'hard'> = {
  INSTRUMENT_DECLINED: 'soft',
  PAYER_CANNOT_PAY: 'hard',
  PAYER_ACCOUNT_RESTRICTED: 'hard',
  PAYER_ACCOUNT_LOCKED_OR_CLOSED: 'hard',
  CARD_EXPIRED: 'hard',
  MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED: 'hard',
  REDIRECT_PAYER_FOR_ALTERNATE_FUNDING: 'hard',
};

/** The dunning outcome of a renewal charge, for `renewal_charges_total` (a small, fixed label set). */
export function renewalOutcome(outcome: ChargeOutcome): RenewalMetric {
  if (outcome.startsWith('renewed') || outcome === 'completed' || outcome.startsWith('activated')) return 'paid';
  if (outcome === 'declined') return 'declined';
  if (outcome === 'no payment method') return 'no_payment_method';
  if (outcome.startsWith('refused')) return 'refused';
  if (outcome.includes('not charged')) return 'not_charged';
  if (outcome.startsWith('refunded')) return 'refunded';
  return 'pending';
}

/** PayPal's answer to a renewal (or plan change) charge, recorded under the payment's lock. */
export async function recordCharge(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  paymentId: string,
  answer: OrderSeen | ChargeRefusal,
): Promise<ChargeOutcome> {
  const p = await payments.lock(trx, { id: paymentId });
  if (!p) return 'no-op';
  if (answer instanceof Error) {
    const decline = DECLINES[answer.issue ?? ''];
    const declined = decline !== undefined;
    const t = await payments.transition(
      trx,
      p,
      declined ? { type: 'capture_declined' } : { type: 'provider_failed', reason: 'provider_error' },
    );
    // Only the buyer can help a saved wallet PayPal no longer knows, or one that needs the payer.
    const needsBuyer = METHOD_GONE[answer.issue ?? ''] ?? (decline === 'hard' ? 'payer_action_required' : undefined);
    if (t && needsBuyer && p.kind === 'renewal') await paymentMethodRequired(ctx, trx, p, needsBuyer, declined);
    else if (t) await paymentFailed(ctx, trx, p, declined ? 'declined' : 'provider_error');
    return declined ? 'declined' : `refused: ${answer.issue}`;
  }
  if (!p.provider_order_id) await payments.record(trx, p, { provider_order_id: answer.orderId });
  await payments.transition(trx, p, { type: 'order_created' });
  return recordOrder(ctx, trx, p, answer);
}

/** What a renewal (or plan change) charge request comes to: not charged (and why), or the charge to make. */
export async function decideCharge(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  paymentId: string,
): Promise<
  'no-op' | NotCharged | 'no payment method' | `${PaidOutcome} (free period, not charged)` | ChargeVaultedInput
> {
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
