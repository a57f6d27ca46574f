import type { Transaction } from 'kysely';
import type { Database, PaymentRow } from '@billing/db';
import { HOLDING_MONEY, isUuid } from '@billing/domain';
import type { WebhookAction } from '@billing/payments';
import { namedPayments, type NamedPayments } from './named-payments.js';
import { chargedBack } from './charge-back.js';
import { disputeReported, type DisputeOutcome } from './dispute.js';
import {
  activateSubscription,
  activationFits,
  completeActivations,
  lockActivations,
  type ActivationOutcome,
  type CapturedActivation,
  type CaptureSeen,
} from './activations.js';
import { couponOf } from './coupons.js';
import type { PaymentUseCaseContext } from './payment-context.js';
import { failWith, paymentFailed } from './payment-failed.js';
import { payments } from './payments.js';
import { applyPlanChange, planChangeFailed, planChangeOfPayment } from './change-plan.js';
import { issueReceipt, paymentReceipt } from './receipts.js';
import { refundReported } from './refund-reported.js';
import { requestRefund } from './refunds.js';
import { walletKept, walletRevoked } from './save-wallet.js';
import { windowOf } from './periods.js';
import { recordRenewalPaid } from './renewals.js';
import { subscriptions } from './subscriptions.js';

// The use case "PayPal answered about one of our payments" (docs/architecture.md, use cases):
// an approval to capture, a capture checked against the payment and then kept, refunded or
// failed; a payment completed becomes an active subscription (activations.ts), a renewed period
// or a plan change, with its receipt. Every write goes through the tables' owners under the
// payment's lock, which the caller holds, so a stale or repeated answer is a no-op.

type Tx = Transaction<Database>;

/** An outcome that asks the caller to capture the order once its transaction has committed. */
export const CAPTURE_NEEDED = 'approved; capture needed';

/** What a completed payment did to its subscription. */
export type PaidOutcome =
  | ActivationOutcome
  | 'renewed'
  | 'plan changed'
  | 'refunded: plan change no longer applies'
  | 'refunded: subscription ends at its period end';

/** What PayPal's answer about a payment came to (logged, stored on the provider event, counted). */
export type PaymentOutcome =
  | 'no-op'
  | 'approved'
  | typeof CAPTURE_NEEDED
  | 'voided'
  | 'declined'
  | 'capture pending'
  | 'capture_mismatch'
  | 'refunded: period already paid'
  | 'refunded: payment no longer open'
  | PaidOutcome
  | `${PaidOutcome} (free period, not charged)`
  /** An order or capture status that changes nothing of ours (CREATED, SAVED, PAYER_ACTION_REQUIRED, …). */
  | `order ${string}`
  | `capture ${string}`;

/** An order as PayPal shows it: a look-up, a capture or a vaulted charge answered. */
export interface OrderSeen {
  orderId: string;
  /** CREATED, SAVED, APPROVED, VOIDED, COMPLETED, PAYER_ACTION_REQUIRED */
  status: string;
  customId: string | null;
  capture: CaptureSeen | null;
  vaultId: string | null;
}

/** An order as PayPal shows it, applied to the payment `p` (locked by the caller). */
export async function recordOrder(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  order: OrderSeen,
): Promise<PaymentOutcome> {
  if (order.capture) return recordCapture(ctx, trx, p, order.capture, order.vaultId);
  if (order.status === 'APPROVED') return markApproved(trx, p);
  if (order.status === 'VOIDED') {
    await failWith(ctx, trx, p, { type: 'voided' }, 'voided');
    return 'voided';
  }
  return `order ${order.status}`;
}

/** The buyer approved: the payment is approved, and CAPTURE_NEEDED tells the caller to capture after its commit. */
export async function markApproved(trx: Tx, p: PaymentRow): Promise<'approved' | 'no-op' | typeof CAPTURE_NEEDED> {
  const t = await payments.transition(trx, p, { type: 'approved' });
  const mustCapture = t?.effects.includes('capture') || (p.status === 'approved' && !p.provider_capture_id);
  if (!mustCapture || !p.provider_order_id) return t ? 'approved' : 'no-op';
  return CAPTURE_NEEDED;
}

/** A capture PayPal reports: checked against our payment, then kept, refunded or failed. */
export async function recordCapture(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  capture: CaptureSeen,
  vaultId: string | null,
): Promise<PaymentOutcome> {
  const matches = capture.customId === p.id && capture.amount === p.amount && capture.currency === p.currency;
  if (!matches) {
    const t = await payments.transition(trx, p, { type: 'capture_mismatch' }, { provider_capture_id: capture.id });
    if (!t) return 'no-op';
    ctx.logger.error('capture does not match our payment: refunding it', { paymentId: p.id, capture });
    // Refunded as captured: PayPal refuses a refund in another currency than the capture's.
    await requestRefund(
      trx,
      { id: p.id, currency: capture.currency || p.currency },
      capture.amount,
      'capture_mismatch',
      'capture did not match the payment',
    );
    await paymentFailed(ctx, trx, p, 'capture_mismatch');
    return 'capture_mismatch';
  }
  if (capture.status === 'PENDING') {
    const t = await payments.transition(trx, p, { type: 'capture_pending' }, { provider_capture_id: capture.id });
    return t ? 'capture pending' : 'no-op';
  }
  if (capture.status === 'DECLINED' || capture.status === 'FAILED')
    return (await failWith(ctx, trx, p, { type: 'capture_declined' }, 'declined')) ? 'declined' : 'no-op';
  if (capture.status !== 'COMPLETED' && capture.status !== 'REFUNDED' && capture.status !== 'PARTIALLY_REFUNDED')
    return `capture ${capture.status}`;
  if (await periodPaidByAnother(trx, p)) {
    // Money taken for a period another payment of ours already paid: it goes back, whole.
    const d = await payments.transition(trx, p, { type: 'duplicate_capture' }, { provider_capture_id: capture.id });
    if (!d) return 'no-op';
    ctx.logger.error('a second capture for a period already paid: refunding it', {
      paymentId: p.id,
      captureId: capture.id,
    });
    await requestRefund(trx, p, capture.amount, 'late_capture', 'the period was already paid by another payment');
    return 'refunded: period already paid';
  }
  const t = await payments.transition(trx, p, { type: 'capture_completed' }, { provider_capture_id: capture.id });
  if (!t) return 'no-op';
  if (t.effects.includes('refund_in_full')) {
    await requestRefund(trx, p, p.amount, 'late_capture', `captured after the payment was ${p.status}`);
    return 'refunded: payment no longer open';
  }
  return paid(ctx, trx, p, vaultId);
}

/**
 * A period a coupon made free (docs/api.md, coupons at checkout): the payment of 0 is recorded as
 * paid without a PayPal charge, and everything that follows a completed payment follows.
 */
export async function paidWithoutCharge(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  vaultId: string | null,
): Promise<'no-op' | `${PaidOutcome} (free period, not charged)`> {
  if (p.amount !== 0) throw new Error(`payment ${p.id} of ${p.amount} cannot be paid without a charge`);
  const t = await payments.transition(trx, p, { type: 'nothing_due' });
  if (!t) return 'no-op';
  return `${await paid(ctx, trx, p, vaultId)} (free period, not charged)`;
}

/** Another payment of ours holds money for this payment's period. */
export async function periodPaidByAnother(trx: Tx, p: PaymentRow): Promise<boolean> {
  if (p.kind === 'initial') return false;
  const other = await trx
    .selectFrom('payments')
    .select('id')
    .where('subscription_id', '=', p.subscription_id)
    .where('period_index', '=', p.period_index)
    .where('kind', '=', p.kind)
    .where('id', '!=', p.id)
    .where('status', 'in', [...HOLDING_MONEY])
    .where('failure_reason', 'is', null)
    .executeTakeFirst();
  return Boolean(other);
}

/** A payment of ours completed: the subscription moves on and the receipt is issued. */
async function paid(ctx: PaymentUseCaseContext, trx: Tx, p: PaymentRow, vaultId: string | null): Promise<PaidOutcome> {
  const outcome =
    p.kind === 'upgrade'
      ? await planChangePaid(ctx, trx, p)
      : p.kind === 'initial'
        ? await activate(ctx, trx, p, vaultId)
        : await renewalPaid(trx, p);
  await receiptFor(ctx, trx, p);
  return outcome;
}

/** The first payment completed: the subscription starts, the role, the buyer told (activations.ts). */
async function activate(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  p: PaymentRow,
  vaultId: string | null,
): Promise<ActivationOutcome> {
  const outcome = await activateSubscription(trx, p, vaultId);
  if (outcome === 'activated')
    ctx.logger.info('subscription activated', { subscriptionId: p.subscription_id, paymentId: p.id });
  return outcome;
}

/** A renewal completed: the period is paid, unless the subscription no longer wants it. */
async function renewalPaid(trx: Tx, p: PaymentRow): Promise<PaidOutcome> {
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  const { start, end } = windowOf(sub, p.period_index);
  // Charged for that period whatever follows: the payment shows it, even when the money goes back.
  if (sub.status === 'cancelled' || sub.status === 'expired' || (sub.cancel_at_period_end && start > new Date()))
    await payments.record(trx, p, { period_start: start, period_end: end });
  if (sub.status === 'cancelled' || sub.status === 'expired') {
    await requestRefund(trx, p, p.amount, 'late_capture', `the subscription is ${sub.status}`);
    return 'refunded: subscription ended';
  }
  if (sub.cancel_at_period_end && start > new Date()) {
    // Charged in flight while the buyer cancelled at period end: a period that will not be served.
    await requestRefund(
      trx,
      p,
      p.amount,
      'late_capture',
      'renewal captured after the subscription was set to end at its period end',
    );
    return 'refunded: subscription ends at its period end';
  }
  await recordRenewalPaid(trx, sub, p);
  return 'renewed';
}

/**
 * A plan change's payment completed (docs/api.md, plan changes): the new plan takes effect, unless
 * the subscription ended meanwhile (the money goes back whole).
 */
async function planChangePaid(ctx: PaymentUseCaseContext, trx: Tx, p: PaymentRow): Promise<PaidOutcome> {
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  const change = await planChangeOfPayment(trx, p.id);
  if (!change || sub.status !== 'active' || change.status !== 'pending') {
    await requestRefund(trx, p, p.amount, 'late_capture', `the plan change no longer applies (${sub.status})`);
    if (change) await planChangeFailed(trx, change, `subscription ${sub.status}`);
    return 'refunded: plan change no longer applies';
  }
  await applyPlanChange(trx, sub, change, p);
  ctx.logger.info('plan changed', { subscriptionId: sub.id, paymentId: p.id, planId: change.to_plan_id });
  return 'plan changed';
}

/**
 * The money was taken: a receipt, numbered in this transaction (docs/api.md, GET
 * /v1/payments/:id/receipt), whatever happens to the subscription (a late capture refunded gets
 * its credit note too).
 */
async function receiptFor(ctx: PaymentUseCaseContext, trx: Tx, p: PaymentRow): Promise<void> {
  const sub = await trx
    .selectFrom('subscriptions')
    .select(['plan_name', 'plan_id', 'amount'])
    .where('id', '=', p.subscription_id)
    .executeTakeFirstOrThrow();
  const coupon = p.kind !== 'upgrade' && p.amount < sub.amount ? await couponOf(trx, p.subscription_id) : undefined;
  const fresh = await trx.selectFrom('payments').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow();
  // The receipt, numbered, and its message in one statement, as late in the transaction as the
  // caller allows: the currency's counter is locked from here to the commit.
  const { description, message } = paymentReceipt(fresh, sub, coupon, ctx.publicBaseUrl);
  if (ctx.receipts) ctx.receipts.add(p, description, message);
  else await issueReceipt(trx, p, description, message);
}

/** What a webhook came to (stored on the provider event, logged). */
export type EventOutcome =
  | PaymentOutcome
  | 'unknown order'
  | 'capture names no payment of ours'
  | 'reversal names no payment of ours'
  | 'refund names no capture of ours'
  | 'vault token for no payment of ours'
  | 'vault id kept'
  | 'vault token deleted before: not kept'
  | Awaited<ReturnType<typeof chargedBack>>
  | Awaited<ReturnType<typeof refundReported>>
  | DisputeOutcome
  | `payment method removed from ${number} subscription(s)`
  | `ignored ${string}`;

/**
 * One of PayPal's webhooks (parsed by the provider) applied to the payment it names, in the caller's
 * transaction: the use case's entry point for webhooks. Each lookup
 * locks the payment row, so concurrent copies of one event serialise and the later ones find
 * nothing left to do.
 */
export async function onPaymentEvent(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  action: WebhookAction,
): Promise<{ paymentId: string | null; outcome: EventOutcome }> {
  switch (action.kind) {
    case 'order_approved': {
      const p = await payments.lock(trx, { id: action.customId, orderId: action.orderId });
      if (!p) return { paymentId: null, outcome: 'unknown order' };
      return { paymentId: p.id, outcome: await markApproved(trx, p) };
    }
    case 'capture_completed':
    case 'capture_pending':
    case 'capture_declined': {
      const p = await payments.lock(trx, {
        id: action.capture.customId,
        orderId: action.orderId,
        captureId: action.capture.id,
      });
      if (!p) return { paymentId: null, outcome: 'capture names no payment of ours' };
      return { paymentId: p.id, outcome: await recordCapture(ctx, trx, p, action.capture, null) };
    }
    case 'capture_reversed': {
      const p = await payments.lock(trx, { captureId: action.captureId });
      if (!p) return { paymentId: null, outcome: 'reversal names no payment of ours' };
      return { paymentId: p.id, outcome: await chargedBack(trx, p) };
    }
    case 'capture_refunded': {
      const p = await payments.lock(trx, { captureId: action.captureId });
      if (!p) return { paymentId: null, outcome: 'refund names no capture of ours' };
      return { paymentId: p.id, outcome: await refundReported(trx, p, action) };
    }
    case 'order_voided': {
      const p = await payments.lock(trx, { id: action.customId, orderId: action.orderId });
      if (!p) return { paymentId: null, outcome: 'unknown order' };
      const t = await failWith(ctx, trx, p, { type: 'voided' }, 'voided');
      return { paymentId: p.id, outcome: t ? 'voided' : 'no-op' };
    }
    case 'vault_token_created': {
      const p = await payments.lock(trx, { id: action.customId, orderId: action.orderId });
      if (!p) return { paymentId: null, outcome: 'vault token for no payment of ours' };
      const kept = await walletKept(trx, p, action.vaultId);
      return { paymentId: p.id, outcome: kept === 'kept' ? 'vault id kept' : 'vault token deleted before: not kept' };
    }
    case 'vault_token_deleted': {
      const n = await walletRevoked(ctx, trx, action.vaultId);
      return { paymentId: null, outcome: `payment method removed from ${n} subscription(s)` };
    }
    case 'dispute_changed':
      return disputeReported(trx, action.dispute);
    case 'not_supported':
      return { paymentId: null, outcome: `ignored ${action.eventType}` };
  }
}

/** One of a window's webhooks: the key the caller knows it by (its stored row) and what PayPal said. */
export interface WindowEvent {
  key: string;
  action: WebhookAction;
}

/**
 * A window's webhooks applied together in the caller's transaction (docs/messages.md, captures in
 * windows): PayPal's completed captures of the common case (a first payment at full price, its
 * payment, order and capture named by no other event of the window) recorded set-based by
 * `completeActivations`, with the window's receipts (`ctx.receipts`); every other one through
 * `onPaymentEvent`, one at a time in the order given. What each came to, by key.
 */
export async function onPaymentEvents(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  events: readonly WindowEvent[],
): Promise<Map<string, { paymentId: string | null; outcome: EventOutcome }>> {
  const done = new Map<string, { paymentId: string | null; outcome: EventOutcome }>();
  const captures = events.flatMap(({ key, action }) =>
    ctx.receipts && action.kind === 'capture_completed' && action.capture.customId && isUuid(action.capture.customId)
      ? [{ key, capture: action.capture, orderId: action.orderId, paymentId: action.capture.customId }]
      : [],
  );
  if (captures.length && ctx.receipts) {
    const locked = await lockActivations(
      trx,
      captures.map((c) => c.paymentId),
    );
    // A payment, order or capture that more than one event of the window names goes the usual way.
    const named = new Map<string, number>();
    for (const { action } of events) for (const ref of refsOf(action)) named.set(ref, (named.get(ref) ?? 0) + 1);
    const once = (ref: string | null) => ref === null || (named.get(ref) ?? 0) <= 1;
    const fitting = captures.flatMap((c) => {
      const l = locked.get(c.paymentId);
      const item: CapturedActivation | undefined = l && { ...l, capture: c.capture, orderId: c.orderId };
      return item && activationFits(item) && once(item.p.id) && once(item.p.provider_order_id) && once(c.capture.id)
        ? [{ ...c, item }]
        : [];
    });
    await completeActivations(
      trx,
      fitting.map((f) => f.item),
      ctx.receipts,
      ctx.publicBaseUrl,
    );
    for (const f of fitting) done.set(f.key, { paymentId: f.paymentId, outcome: 'activated' });
  }
  for (const { key, action } of events) if (!done.has(key)) done.set(key, await onPaymentEvent(ctx, trx, action));
  return done;
}

/** Adds the payments a webhook names (by our id, its order or its capture) to `named`, to be locked up front. */
export function nameEventPayments(action: WebhookAction, named: NamedPayments): void {
  switch (action.kind) {
    case 'order_approved':
    case 'order_voided':
    case 'vault_token_created':
      if (action.customId) named.ids.add(action.customId);
      if (action.orderId) named.orders.add(action.orderId);
      return;
    case 'capture_completed':
    case 'capture_pending':
    case 'capture_declined':
      if (action.capture.customId) named.ids.add(action.capture.customId);
      if (action.orderId) named.orders.add(action.orderId);
      named.captures.add(action.capture.id);
      return;
    case 'capture_refunded':
      if (action.customId) named.ids.add(action.customId);
      named.captures.add(action.captureId);
      return;
    case 'capture_reversed':
      named.captures.add(action.captureId);
      return;
    case 'dispute_changed':
      for (const c of action.dispute.captureIds) named.captures.add(c);
      return;
    default:
      return;
  }
}

/** The payment, order and capture ids a webhook names. */
function refsOf(action: WebhookAction): string[] {
  const named = namedPayments();
  nameEventPayments(action, named);
  return [...named.ids, ...named.orders, ...named.captures];
}
