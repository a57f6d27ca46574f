import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { PaymentRefunded, SubscriptionPaymentMethodRequired, SubscriptionTrialStarted } from '@billing/contracts';
import type { Database, PaymentRow, RefundRow, SubscriptionRow, TransactionGroup } from '@billing/db';
import {
  activateSubscription,
  applyPlanChange,
  couponOf,
  endCheckout,
  endSubscriptionGrant,
  hadTrial,
  issueCreditNote,
  issueReceipt,
  paymentReceipt,
  type ReceiptBatch,
  planChangeFailed,
  planChangeOfPayment,
  payments,
  recordRenewalFailure,
  recordRenewalPaid,
  refundableLeft,
  refunds,
  replacePastDue,
  requestRefund,
  startSubscriptionGrant,
  subscriptions,
  trialNote,
  windowOf,
} from '@billing/billing-core';
import { HOLDING_MONEY, isUuid, OPEN_PAYMENT_STATUSES, trialSchedule, type PaymentEvent } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import type { CaptureInfo, OrderState, PaymentProvider, ProviderRefusedError, WebhookAction } from '@billing/payments';
import type { Logger, Metrics } from '@billing/service-kit';
import { notifyCancelled } from './notify.js';
import type { PaymentWindow } from './window.js';

export type Tx = Transaction<Database>;

/** What every payment handler works with. */
export interface PaymentContext {
  provider: PaymentProvider;
  logger: Logger;
  /** DUNNING_RETRY_MS: when failed renewal attempts are tried again. */
  dunningRetryMs: readonly number[];
  /** `renewal_charges_total` (absent in tests that do not read it). */
  metrics?: Pick<Metrics, 'renewalCharges'>;
  /** billing-api's public address, for receipt links (PUBLIC_BASE_URL). */
  publicBaseUrl?: string;
  /**
   * A window's receipts, numbered together when its transaction ends (docs/messages.md, windows);
   * without it, each receipt is numbered at once.
   */
  receipts?: ReceiptBatch;
  /**
   * Group commit for the transactions that record PayPal's answers (captures, renewal charges):
   * those of one turn of the event loop share one transaction and its receipts. Without it, each
   * records on its own.
   */
  records?: TransactionGroup<PaymentWindow>;
  /**
   * Renewal charges' answers recorded together, set-based in the common case (docs/messages.md,
   * windows); without it, each is recorded through `records` or on its own.
   */
  charges?: { record(paymentId: string, answer: OrderState | ProviderRefusedError): Promise<string> };
}

/**
 * Runs `record` in the context's group if it has one (group commit: docs/messages.md, windows),
 * else in a transaction of its own.
 */
export function recordAnswer<T>(
  ctx: PaymentContext,
  db: Kysely<Database>,
  record: (trx: Tx, outcomes: PaymentOutcomes) => Promise<T>,
): Promise<T> {
  if (ctx.records)
    return ctx.records.run((trx, w) => record(trx, new PaymentOutcomes({ ...ctx, receipts: w.receipts })));
  return db.transaction().execute((trx) => record(trx, new PaymentOutcomes(ctx)));
}

/** An outcome that asks the caller to capture the order once its transaction has committed. */
export const CAPTURE_NEEDED = 'approved; capture needed';

/** A payment still waiting for PayPal or the buyer. */
export const OPEN: readonly string[] = OPEN_PAYMENT_STATUSES;

export type FailureCause =
  | 'declined'
  | 'provider_error'
  | 'capture_mismatch'
  | 'checkout_expired'
  | 'no_payment_method'
  | 'voided';

/**
 * What follows when PayPal answers about one of our payments, in the caller's transaction with
 * the payment locked: every write goes through the `payments` and `subscriptions` owners, so a
 * stale or repeated answer is a no-op (docs/architecture.md).
 */
export class PaymentOutcomes {
  constructor(private readonly ctx: PaymentContext) {}

  /** An order as PayPal shows it (a look-up, a capture or a vaulted charge answered). */
  async recordOrder(trx: Tx, p: PaymentRow, order: OrderState): Promise<string> {
    if (order.capture) return this.recordCapture(trx, p, order.capture, order.vaultId);
    if (order.status === 'APPROVED') return this.markApproved(trx, p);
    if (order.status === 'VOIDED') {
      await this.failWith(trx, p, { type: 'voided' }, 'voided');
      return 'voided';
    }
    return `order ${order.status}`;
  }

  /** The buyer approved: the payment is approved, and CAPTURE_NEEDED tells the caller to capture after its commit. */
  async markApproved(trx: Tx, p: PaymentRow): Promise<string> {
    const t = await payments.transition(trx, p, { type: 'approved' });
    const mustCapture = t?.effects.includes('capture') || (p.status === 'approved' && !p.provider_capture_id);
    if (!mustCapture || !p.provider_order_id) return t ? 'approved' : 'no-op';
    return CAPTURE_NEEDED;
  }

  /** A capture PayPal reports: checked against our payment, then kept, refunded or failed. */
  async recordCapture(trx: Tx, p: PaymentRow, capture: CaptureInfo, vaultId: string | null): Promise<string> {
    const matches = capture.customId === p.id && capture.amount === p.amount && capture.currency === p.currency;
    if (!matches) {
      const t = await payments.transition(trx, p, { type: 'capture_mismatch' }, { provider_capture_id: capture.id });
      if (!t) return 'no-op';
      this.ctx.logger.error('capture does not match our payment: refunding it', { paymentId: p.id, capture });
      // Refunded as captured: PayPal refuses a refund in another currency than the capture's.
      await requestRefund(
        trx,
        { id: p.id, currency: capture.currency || p.currency },
        capture.amount,
        'capture_mismatch',
        'capture did not match the payment',
      );
      await this.paymentFailed(trx, p, 'capture_mismatch');
      return 'capture_mismatch';
    }
    if (capture.status === 'PENDING') {
      const t = await payments.transition(trx, p, { type: 'capture_pending' }, { provider_capture_id: capture.id });
      return t ? 'capture pending' : 'no-op';
    }
    if (capture.status === 'DECLINED' || capture.status === 'FAILED') {
      const t = await this.failWith(trx, p, { type: 'capture_declined' }, 'declined');
      return t ? 'declined' : 'no-op';
    }
    if (capture.status !== 'COMPLETED' && capture.status !== 'REFUNDED' && capture.status !== 'PARTIALLY_REFUNDED')
      return `capture ${capture.status}`;
    if (await this.periodPaidByAnother(trx, p)) {
      // Money taken for a period another payment of ours already paid: it goes back, whole.
      const d = await payments.transition(trx, p, { type: 'duplicate_capture' }, { provider_capture_id: capture.id });
      if (!d) return 'no-op';
      this.ctx.logger.error('a second capture for a period already paid: refunding it', {
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
    return this.paid(trx, p, vaultId);
  }

  /**
   * A period a coupon made free (docs/api.md, coupons at checkout): the payment of 0 is recorded as paid without a
   * PayPal charge, and everything that follows a completed payment follows (the period, the receipt).
   */
  async paidWithoutCharge(trx: Tx, p: PaymentRow, vaultId: string | null): Promise<string> {
    if (p.amount !== 0) throw new Error(`payment ${p.id} of ${p.amount} cannot be paid without a charge`);
    const t = await payments.transition(trx, p, { type: 'nothing_due' });
    if (!t) return 'no-op';
    return `${await this.paid(trx, p, vaultId)} (free period, not charged)`;
  }

  /** A payment of ours completed: the subscription moves on and the receipt is issued. */
  private async paid(trx: Tx, p: PaymentRow, vaultId: string | null): Promise<string> {
    const outcome =
      p.kind === 'upgrade'
        ? await this.planChangePaid(trx, p)
        : p.kind === 'initial'
          ? await this.activate(trx, p, vaultId)
          : await this.renew(trx, p);
    await this.receiptFor(trx, p);
    return outcome;
  }

  /**
   * The money was taken: a receipt, numbered in this transaction (docs/api.md, GET /v1/payments/:id/receipt), whatever
   * happens to the subscription (a late capture refunded gets its credit note too).
   */
  private async receiptFor(trx: Tx, p: PaymentRow): Promise<void> {
    const sub = await trx
      .selectFrom('subscriptions')
      .select(['plan_name', 'plan_id', 'amount'])
      .where('id', '=', p.subscription_id)
      .executeTakeFirstOrThrow();
    const coupon = p.kind !== 'upgrade' && p.amount < sub.amount ? await couponOf(trx, p.subscription_id) : undefined;
    const fresh = await trx.selectFrom('payments').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow();
    // The receipt, numbered, and its message in one statement, as late in the transaction as the
    // caller allows: the currency's counter is locked from here to the commit.
    const { description, message } = paymentReceipt(fresh, sub, coupon, this.ctx.publicBaseUrl);
    if (this.ctx.receipts) this.ctx.receipts.add(p, description, message);
    else await issueReceipt(trx, p, description, message);
  }

  /** Another payment of ours holds money for this payment's period. */
  async periodPaidByAnother(trx: Tx, p: PaymentRow): Promise<boolean> {
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

  /** The first payment completed: billing-core's activation (the subscription starts, the role, the buyer told). */
  private async activate(trx: Tx, p: PaymentRow, vaultId: string | null): Promise<string> {
    const outcome = await activateSubscription(trx, p, vaultId);
    if (outcome === 'activated')
      this.ctx.logger.info('subscription activated', { subscriptionId: p.subscription_id, paymentId: p.id });
    return outcome;
  }

  /**
   * A trial checkout's wallet is saved (docs/api.md, free trials): the subscription is trialing with its role
   * granted, and its first period starts at the trial's end (anchored there, nothing paid before it).
   * One trial per user and role: should another have started meanwhile, this checkout ends instead.
   */
  async startTrial(trx: Tx, sub: SubscriptionRow, vaultId: string): Promise<string> {
    if (sub.status !== 'pending' || !sub.trial_period) return 'no-op';
    if (await hadTrial(trx, sub.user_id, sub.role)) {
      await endCheckout(trx, sub);
      return 'refused: a trial for this role was had already';
    }
    const trial = trialSchedule(new Date(), sub.trial_period);
    const t = await subscriptions.transition(
      trx,
      sub,
      { type: 'trial_started' },
      {
        vault_id: vaultId,
        trial_start: trial.start,
        trial_end: trial.end,
        trial_notice_at: trial.noticeAt,
        anchor_at: trial.end,
        paid_through: trial.end,
        approval_url: null,
      },
    );
    if (!t?.effects.includes('grant_starts')) return 'no-op';
    await startSubscriptionGrant(trx, sub, 'trial started');
    await enqueue(trx, SubscriptionTrialStarted, trialNote(sub));
    await replacePastDue(trx, sub, trial.start);
    this.ctx.logger.info('trial started', { subscriptionId: sub.id, trialEnd: trial.end.toISOString() });
    return 'trial started';
  }

  /**
   * A plan change's payment completed (docs/api.md, plan changes): the new plan takes effect, unless the
   * subscription ended meanwhile (the money goes back whole).
   */
  private async planChangePaid(trx: Tx, p: PaymentRow): Promise<string> {
    const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
    const change = await planChangeOfPayment(trx, p.id);
    if (!change || sub.status !== 'active' || change.status !== 'pending') {
      await requestRefund(trx, p, p.amount, 'late_capture', `the plan change no longer applies (${sub.status})`);
      if (change) await planChangeFailed(trx, change, `subscription ${sub.status}`);
      return 'refunded: plan change no longer applies';
    }
    await applyPlanChange(trx, sub, change, p);
    this.ctx.logger.info('plan changed', { subscriptionId: sub.id, paymentId: p.id, planId: change.to_plan_id });
    return 'plan changed';
  }

  /** A renewal completed: the period is paid, unless the subscription no longer wants it. */
  private async renew(trx: Tx, p: PaymentRow): Promise<string> {
    const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
    if (sub.status === 'cancelled' || sub.status === 'expired') {
      await requestRefund(trx, p, p.amount, 'late_capture', `the subscription is ${sub.status}`);
      return 'refunded: subscription ended';
    }
    const { start } = windowOf(sub, p.period_index);
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
   * The machine's failure `event` applied to the payment; when it moved it, what a failed payment
   * does follows (`paymentFailed`). Whether it moved (a stale or repeated event: nothing).
   */
  async failWith(trx: Tx, p: PaymentRow, event: PaymentEvent, reason: FailureCause): Promise<boolean> {
    const t = await payments.transition(trx, p, event);
    if (t) await this.paymentFailed(trx, p, reason);
    return t !== null;
  }

  /** A payment failed: an initial one cancels its subscription; a renewal starts or continues dunning. */
  async paymentFailed(trx: Tx, p: PaymentRow, reason: FailureCause): Promise<void> {
    if (p.kind === 'upgrade') {
      // A failed plan change changes nothing but itself (docs/api.md, plan changes).
      const change = await planChangeOfPayment(trx, p.id);
      if (change) await planChangeFailed(trx, change, reason);
      return;
    }
    const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
    if (p.kind === 'renewal') {
      await recordRenewalFailure(trx, sub, reason, this.ctx.dunningRetryMs, new Date());
      return;
    }
    await endCheckout(trx, sub);
  }

  /**
   * A renewal only the buyer can help (docs/api.md, …/payment-method): dunning is recorded as for any failure,
   * then the old method is not charged again (no retry time) until a new one is saved; the
   * subscription stays past_due until then or until the last retry's time, when it expires.
   */
  async paymentMethodRequired(
    trx: Tx,
    p: PaymentRow,
    reason: 'no_payment_method' | 'payment_token_deleted' | 'payer_action_required',
  ): Promise<void> {
    await this.paymentFailed(trx, p, reason === 'no_payment_method' ? 'no_payment_method' : 'provider_error');
    const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
    if (sub.status !== 'past_due') return;
    const first = sub.dunning_started_at ?? new Date();
    const last = this.ctx.dunningRetryMs[this.ctx.dunningRetryMs.length - 1] ?? 0;
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
      });
  }

  /** A chargeback: the money is gone, and with it the period it paid. */
  async chargedBack(trx: Tx, p: PaymentRow): Promise<string> {
    const t = await payments.transition(trx, p, { type: 'reversed' });
    if (!t) return 'no-op';
    return (await this.periodLost(trx, p, 'chargeback')) ? 'reversed; subscription cancelled' : 'reversed';
  }

  /**
   * docs/webhooks.md: losing the payment for the period in effect cancels the subscription at once, and a
   * renewal already paid for a later period comes back whole; losing a renewal paid ahead leaves
   * that period unpaid (no free period, no silent charge again: the subscription ends at its period
   * end unless the buyer resumes); an older period's payment changes nothing more.
   */
  private async periodLost(trx: Tx, p: PaymentRow, reason: string): Promise<boolean> {
    const now = new Date();
    if (!p.period_start || !p.period_end || p.period_end <= now) return false;
    const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
    if (p.period_start > now) {
      await this.paidAheadLost(trx, sub, p.period_start);
      return false;
    }
    const s = await subscriptions.transition(
      trx,
      sub,
      { type: 'current_payment_lost' },
      { cancelled_at: now, next_retry_at: null },
    );
    if (!s) return false;
    await endSubscriptionGrant(trx, sub, reason);
    let refunded = 0;
    const ahead = await trx
      .selectFrom('payments')
      .selectAll()
      .where('subscription_id', '=', sub.id)
      .where('id', '!=', p.id)
      .where('status', 'in', [...HOLDING_MONEY])
      .where('period_start', '>', now)
      .forUpdate()
      .execute();
    for (const a of ahead) {
      const left = await refundableLeft(trx, a);
      if (left <= 0) continue;
      await requestRefund(
        trx,
        a,
        left,
        'user_cancel',
        `the subscription ended (${reason}): a period paid ahead comes back`,
      );
      refunded += left;
    }
    await notifyCancelled(trx, sub, now, refunded);
    return true;
  }

  /** A renewal paid ahead is lost: paid only up to its period's start, and renewals stop. */
  private async paidAheadLost(trx: Tx, sub: SubscriptionRow, periodStart: Date): Promise<void> {
    const paidThrough = sub.paid_through && sub.paid_through > periodStart ? periodStart : sub.paid_through;
    const s = await subscriptions.transition(
      trx,
      sub,
      { type: 'cancel_at_period_end' },
      { paid_through: paidThrough, next_retry_at: null },
    );
    if (s) await notifyCancelled(trx, sub, null, 0, periodStart);
    else await subscriptions.record(trx, sub, { paid_through: paidThrough });
  }

  /** A refund PayPal reports: ours confirmed, or one made at PayPal recorded (and its consequences). */
  async refundReported(
    trx: Tx,
    p: PaymentRow,
    action: Extract<WebhookAction, { kind: 'capture_refunded' }>,
  ): Promise<string> {
    const ourId = action.customId && isUuid(action.customId) ? action.customId : null;
    const ours = ourId ? await refunds.lock(trx, ourId, p.id) : undefined;
    if (ours) {
      if (ours.status !== 'completed') await this.refundCompleted(trx, p, ours, action.refundId);
      return 'our refund confirmed';
    }
    const known = await trx
      .selectFrom('refunds')
      .select('id')
      .where('provider_refund_id', '=', action.refundId)
      .executeTakeFirst();
    if (known) return 'no-op';
    const refundId = randomUUID();
    await refunds.insert(trx, {
      id: refundId,
      payment_id: p.id,
      amount: action.amount,
      currency: action.currency,
      status: 'completed',
      origin: 'external',
      reason: 'refunded at PayPal',
      provider_refund_id: action.refundId,
    });
    const total = await this.refundedTotal(trx, p);
    const note = await this.creditNoteFor(
      trx,
      p,
      { id: refundId, payment_id: p.id, amount: action.amount, currency: action.currency },
      'refunded at PayPal',
    );
    await enqueue(trx, PaymentRefunded, {
      userId: p.user_id,
      paymentId: p.id,
      refundId,
      amount: action.amount,
      currency: action.currency,
      refundedAmount: total,
      creditNoteNumber: note.number,
    });
    if (total >= p.amount) await this.periodLost(trx, p, 'refunded outside the system');
    return 'external refund recorded';
  }

  async refundCompleted(trx: Tx, p: PaymentRow, refund: RefundRow, providerRefundId: string): Promise<void> {
    const t = await refunds.transition(
      trx,
      refund,
      { type: 'provider_completed' },
      { provider_refund_id: providerRefundId },
    );
    if (!t) return;
    const total = await this.refundedTotal(trx, p);
    const note = await this.creditNoteFor(trx, p, refund, refund.reason ?? 'refund');
    await enqueue(trx, PaymentRefunded, {
      userId: p.user_id,
      paymentId: p.id,
      refundId: refund.id,
      amount: refund.amount,
      currency: refund.currency,
      refundedAmount: total,
      creditNoteNumber: note.number,
    });
  }

  /** A completed refund's credit note, numbered in this transaction, naming the receipt it corrects. */
  private async creditNoteFor(
    trx: Tx,
    p: PaymentRow,
    refund: Pick<RefundRow, 'id' | 'payment_id' | 'amount' | 'currency'>,
    reason: string,
  ) {
    const receipt = await trx
      .selectFrom('receipts')
      .select('number')
      .where('payment_id', '=', p.id)
      .where('kind', '=', 'receipt')
      .executeTakeFirst();
    return issueCreditNote(
      trx,
      refund,
      p.user_id,
      `${receipt ? `Refund against ${receipt.number}` : 'Refund'}: ${reason}`,
    );
  }

  /** refunded_amount is what completed refunds add up to (capped at the payment's amount). */
  private async refundedTotal(trx: Tx, p: PaymentRow): Promise<number> {
    const r = await trx
      .selectFrom('refunds')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount'), eb.val(0)).as('total'))
      .where('payment_id', '=', p.id)
      .where('status', '=', 'completed')
      .executeTakeFirstOrThrow();
    const total = Math.min(p.amount, Number(r.total));
    await payments.record(trx, p, { refunded_amount: total });
    await payments.transition(trx, p, { type: 'refund_recorded', amount: p.amount, refundedAmount: total });
    return total;
  }
}
