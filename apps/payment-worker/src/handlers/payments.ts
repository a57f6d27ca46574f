import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { PaymentRefunded } from '@billing/contracts';
import type { Database, Db, PaymentRow, RefundRow, SubscriptionRow } from '@billing/db';
import { endSubscriptionGrant, recordRenewalFailure, recordRenewalPaid, refundableLeft, requestRefund, startSubscriptionGrant } from '@billing/billing-core';
import { applyPaymentEvent, applySubscriptionEvent, HOLDING_MONEY, periodWindow, type PaymentEvent } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { ProviderRefusedError, type CaptureInfo, type ChargeVaultedInput, type OrderState, type PaymentProvider, type RefundInput, type WebhookAction } from '@billing/payments';
import type { Logger } from '@billing/service-kit';
import { notifyActivated, notifyCancelled } from './notify.js';

type Tx = Transaction<Database>;

/** An outcome that asks the caller to capture the order once its transaction has committed. */
export const CAPTURE_NEEDED = 'approved; capture needed';

/** A provider call's answer, or its refusal (a 4xx) as a value to record; an unknown outcome is thrown, to be retried. */
async function answerOf<T>(call: Promise<T>): Promise<T | ProviderRefusedError> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ProviderRefusedError) return err;
    throw err;
  }
}
const OPEN: readonly string[] = ['created', 'pending', 'approved'];

/**
 * Applies PayPal's outcomes to our payments and subscriptions (SPEC §4). Methods taking a
 * transaction lock the payment row, so concurrent copies of one event serialise and the later
 * ones find nothing left to do; methods taking the database call PayPal with no transaction held
 * (read, call, record), the record applied through the same state machines.
 */
export class PaymentService {
  constructor(private readonly provider: PaymentProvider, private readonly logger: Logger, private readonly dunningRetryMs: readonly number[]) {}

  async lockPayment(trx: Tx, where: { id?: string | null; orderId?: string | null; captureId?: string | null }): Promise<PaymentRow | undefined> {
    const uuid = /^[0-9a-f-]{36}$/i;
    if (where.id && uuid.test(where.id)) {
      const p = await trx.selectFrom('payments').selectAll().where('id', '=', where.id).forUpdate().executeTakeFirst();
      if (p) return p;
    }
    if (where.orderId) {
      const p = await trx.selectFrom('payments').selectAll().where('provider_order_id', '=', where.orderId).forUpdate().executeTakeFirst();
      if (p) return p;
    }
    if (where.captureId) return trx.selectFrom('payments').selectAll().where('provider_capture_id', '=', where.captureId).forUpdate().executeTakeFirst();
    return undefined;
  }

  private async setPayment(trx: Tx, p: PaymentRow, event: PaymentEvent, extra: Partial<Record<'provider_capture_id', string>> = {}) {
    const t = applyPaymentEvent(p.status, event);
    if (!t) {
      if (extra.provider_capture_id && !p.provider_capture_id) await trx.updateTable('payments').set({ ...extra, updated_at: sql`now()` }).where('id', '=', p.id).execute();
      return null;
    }
    await trx.updateTable('payments').set({ status: t.status, ...(t.failureReason ? { failure_reason: t.failureReason } : {}), ...extra, updated_at: sql`now()` }).where('id', '=', p.id).execute();
    Object.assign(p, { status: t.status, ...(t.failureReason ? { failure_reason: t.failureReason } : {}), ...extra });
    return t;
  }

  /** A webhook, after the gateway stored it. */
  async onAction(trx: Tx, action: WebhookAction): Promise<{ paymentId: string | null; outcome: string }> {
    switch (action.kind) {
      case 'order_approved': {
        const p = await this.lockPayment(trx, { id: action.customId, orderId: action.orderId });
        if (!p) return { paymentId: null, outcome: 'unknown order' };
        return { paymentId: p.id, outcome: await this.approved(trx, p) };
      }
      case 'capture_completed':
      case 'capture_pending':
      case 'capture_declined': {
        const p = await this.lockPayment(trx, { id: action.capture.customId, orderId: action.orderId, captureId: action.capture.id });
        if (!p) return { paymentId: null, outcome: 'capture names no payment of ours' };
        return { paymentId: p.id, outcome: await this.applyCapture(trx, p, action.capture, null) };
      }
      case 'capture_reversed': {
        const p = await this.lockPayment(trx, { captureId: action.captureId });
        if (!p) return { paymentId: null, outcome: 'reversal names no payment of ours' };
        return { paymentId: p.id, outcome: await this.reversed(trx, p) };
      }
      case 'capture_refunded': {
        const p = await this.lockPayment(trx, { captureId: action.captureId });
        if (!p) return { paymentId: null, outcome: 'refund names no capture of ours' };
        return { paymentId: p.id, outcome: await this.refunded(trx, p, action) };
      }
      case 'order_voided': {
        const p = await this.lockPayment(trx, { id: action.customId, orderId: action.orderId });
        if (!p) return { paymentId: null, outcome: 'unknown order' };
        const t = await this.setPayment(trx, p, { type: 'voided' });
        if (t) await this.failed(trx, p, 'voided');
        return { paymentId: p.id, outcome: t ? 'voided' : 'no-op' };
      }
      case 'vault_token_created': {
        const p = await this.lockPayment(trx, { id: action.customId, orderId: action.orderId });
        if (!p) return { paymentId: null, outcome: 'vault token for no payment of ours' };
        await trx.updateTable('subscriptions').set({ vault_id: action.vaultId, updated_at: sql`now()` }).where('id', '=', p.subscription_id).where('vault_id', 'is', null).execute();
        return { paymentId: p.id, outcome: 'vault id kept' };
      }
      case 'vault_token_deleted': {
        const subs = await trx.selectFrom('subscriptions').selectAll().where('vault_id', '=', action.vaultId).forUpdate().execute();
        for (const sub of subs) {
          const s = applySubscriptionEvent({ status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end }, { type: 'payment_method_removed' });
          await trx.updateTable('subscriptions').set({ vault_id: null, ...(s ? { cancel_at_period_end: true } : {}), next_retry_at: null, updated_at: sql`now()`, version: sql`version + 1` }).where('id', '=', sub.id).execute();
        }
        return { paymentId: null, outcome: `payment method removed from ${subs.length} subscription(s)` };
      }
      case 'not_supported':
        return { paymentId: null, outcome: `ignored ${action.eventType}` };
    }
  }

  /**
   * Return URL or reconciliation: look the order up and move the payment on. No transaction is
   * held while PayPal answers: read, call, then record under the payment's lock (the state machine
   * makes a stale answer a no-op); a capture it calls for follows the same way.
   */
  async check(db: Db, orderId: string, expireUnapproved = false): Promise<string> {
    const open = await db.selectFrom('payments').select(['id', 'status']).where('provider_order_id', '=', orderId).executeTakeFirst();
    if (!open) return 'unknown order';
    if (!OPEN.includes(open.status)) return 'already settled';
    const order = await this.provider.getOrder(orderId);
    const outcome = await db.transaction().execute((trx) => this.applyLookup(trx, orderId, order, expireUnapproved));
    return outcome === CAPTURE_NEEDED ? this.capture(db, open.id) : outcome;
  }

  private async applyLookup(trx: Tx, orderId: string, order: OrderState, expireUnapproved: boolean): Promise<string> {
    const p = await this.lockPayment(trx, { orderId });
    if (!p) return 'unknown order';
    if (!OPEN.includes(p.status)) return 'already settled';
    if (expireUnapproved && !order.capture && (order.status === 'PAYER_ACTION_REQUIRED' || order.status === 'CREATED')) {
      if (p.kind === 'renewal') {
        // PayPal wants the payer, who is not there for a renewal: a failed attempt, and dunning.
        const d = await this.setPayment(trx, p, { type: 'capture_declined' });
        if (d) await this.failed(trx, p, 'declined');
        return d ? 'renewal needs the payer: failed' : 'no-op';
      }
      const t = await this.setPayment(trx, p, { type: 'checkout_expired' });
      if (t) await this.failed(trx, p, 'checkout_expired');
      return t ? 'checkout expired' : 'no-op';
    }
    return this.applyOrder(trx, p, order);
  }

  /**
   * Captures an approved payment's order (a retry reuses the same request id) and records the
   * answer; no transaction is held while PayPal answers.
   */
  async capture(db: Db, paymentId: string): Promise<string> {
    const p = await db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirst();
    if (!p || p.status !== 'approved' || p.provider_capture_id || !p.provider_order_id) return 'no capture needed';
    const answer = await answerOf(this.provider.capture({ orderId: p.provider_order_id, idempotencyKey: `${p.id}:capture` }));
    const outcome = await db.transaction().execute(async (trx) => {
      const locked = (await this.lockPayment(trx, { id: paymentId }))!;
      if (answer instanceof ProviderRefusedError) {
        if (answer.issue === 'INSTRUMENT_DECLINED') {
          const t = await this.setPayment(trx, locked, { type: 'capture_declined' });
          if (t) await this.failed(trx, locked, 'declined');
          return 'declined';
        }
        // A 4xx is PayPal's final word (SPEC §5): left approved, the payment would be captured again for ever.
        this.logger.warn('capture refused', { paymentId, issue: answer.issue });
        const f = await this.setPayment(trx, locked, { type: 'provider_failed', reason: 'provider_error' });
        if (f) await this.failed(trx, locked, 'provider_error');
        return `capture refused: ${answer.issue}`;
      }
      return this.applyOrder(trx, locked, answer);
    });
    return outcome === CAPTURE_NEEDED ? 'capture answered without a capture' : outcome;
  }

  /**
   * Charges a renewal payment with the vaulted PayPal wallet (a retry reuses the same request id):
   * decide under the payment's lock, charge with no transaction held, record under the lock again.
   */
  async chargeRenewal(db: Db, paymentId: string): Promise<string> {
    const decision = await db.transaction().execute((trx) => this.decideRenewal(trx, paymentId));
    if (typeof decision === 'string') return decision;
    const answer = await answerOf(this.provider.chargeVaulted(decision));
    const outcome = await db.transaction().execute(async (trx) => {
      const p = await this.lockPayment(trx, { id: paymentId });
      if (!p) return 'no-op';
      if (answer instanceof ProviderRefusedError) {
        const declined = answer.issue === 'INSTRUMENT_DECLINED';
        const t = await this.setPayment(trx, p, declined ? { type: 'capture_declined' } : { type: 'provider_failed', reason: 'provider_error' });
        if (t) await this.failed(trx, p, declined ? 'declined' : 'provider_error');
        return declined ? 'declined' : `refused: ${answer.issue}`;
      }
      if (!p.provider_order_id) {
        await trx.updateTable('payments').set({ provider_order_id: answer.orderId, updated_at: sql`now()` }).where('id', '=', p.id).execute();
        p.provider_order_id = answer.orderId;
      }
      await this.setPayment(trx, p, { type: 'order_created' });
      return this.applyOrder(trx, p, answer);
    });
    return outcome === CAPTURE_NEEDED ? this.capture(db, paymentId) : outcome;
  }

  /** What a renewal charge request comes to: not charged (and why), or the charge to make. */
  private async decideRenewal(trx: Tx, paymentId: string): Promise<string | ChargeVaultedInput> {
    const p = await this.lockPayment(trx, { id: paymentId });
    if (!p || p.status !== 'created') return 'no-op';
    const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', p.subscription_id).forUpdate().executeTakeFirstOrThrow();
    if (sub.status !== 'active' && sub.status !== 'past_due') {
      await trx.updateTable('payments').set({ status: 'cancelled', updated_at: sql`now()` }).where('id', '=', p.id).execute();
      return `subscription ${sub.status}: not charged`;
    }
    if (sub.cancel_at_period_end) {
      // The buyer (or a lost payment method) ended renewals after this one was queued.
      await this.setPayment(trx, p, { type: 'buyer_cancelled' });
      return 'subscription ends at its period end: not charged';
    }
    if (await this.periodPaid(trx, p)) {
      await this.setPayment(trx, p, { type: 'superseded' });
      return 'period already paid: not charged';
    }
    if (!sub.vault_id) {
      await this.setPayment(trx, p, { type: 'provider_failed', reason: 'no_payment_method' });
      await this.failed(trx, p, 'no_payment_method');
      return 'no payment method';
    }
    return { paymentId: p.id, amount: p.amount, currency: p.currency.trim(), description: `${sub.plan_name} renewal`, vaultId: sub.vault_id, idempotencyKey: `${p.id}:charge` };
  }

  /** Another payment of ours holds money for this payment's period (renewals and upgrades alike). */
  private async periodPaid(trx: Tx, p: PaymentRow): Promise<boolean> {
    if (p.kind === 'initial') return false;
    const other = await trx.selectFrom('payments').select('id').where('subscription_id', '=', p.subscription_id).where('period_index', '=', p.period_index)
      .where('kind', '=', p.kind).where('id', '!=', p.id).where('status', 'in', [...HOLDING_MONEY])
      .where('failure_reason', 'is', null).executeTakeFirst();
    return Boolean(other);
  }

  async applyOrder(trx: Tx, p: PaymentRow, order: OrderState): Promise<string> {
    if (order.capture) return this.applyCapture(trx, p, order.capture, order.vaultId);
    if (order.status === 'APPROVED') return this.approved(trx, p);
    if (order.status === 'VOIDED') {
      const t = await this.setPayment(trx, p, { type: 'voided' });
      if (t) await this.failed(trx, p, 'voided');
      return 'voided';
    }
    return `order ${order.status}`;
  }

  /** The buyer approved: the payment is approved, and CAPTURE_NEEDED tells the caller to capture after its commit. */
  private async approved(trx: Tx, p: PaymentRow): Promise<string> {
    const t = await this.setPayment(trx, p, { type: 'approved' });
    const mustCapture = t?.effects.includes('capture') || (p.status === 'approved' && !p.provider_capture_id);
    if (!mustCapture || !p.provider_order_id) return t ? 'approved' : 'no-op';
    return CAPTURE_NEEDED;
  }

  async applyCapture(trx: Tx, p: PaymentRow, capture: CaptureInfo, vaultId: string | null): Promise<string> {
    const matches = capture.customId === p.id && capture.amount === p.amount && capture.currency === p.currency.trim();
    if (!matches) {
      const t = await this.setPayment(trx, p, { type: 'capture_mismatch' }, { provider_capture_id: capture.id });
      if (!t) return 'no-op';
      this.logger.error('capture does not match our payment: refunding it', { paymentId: p.id, capture });
      // Refunded as captured: PayPal refuses a refund in another currency than the capture's.
      await requestRefund(trx, { id: p.id, currency: capture.currency || p.currency }, capture.amount, 'capture_mismatch', 'capture did not match the payment');
      await this.failed(trx, p, 'capture_mismatch');
      return 'capture_mismatch';
    }
    if (capture.status === 'PENDING') {
      const t = await this.setPayment(trx, p, { type: 'capture_pending' }, { provider_capture_id: capture.id });
      return t ? 'capture pending' : 'no-op';
    }
    if (capture.status === 'DECLINED' || capture.status === 'FAILED') {
      const t = await this.setPayment(trx, p, { type: 'capture_declined' });
      if (t) await this.failed(trx, p, 'declined');
      return t ? 'declined' : 'no-op';
    }
    if (capture.status !== 'COMPLETED' && capture.status !== 'REFUNDED' && capture.status !== 'PARTIALLY_REFUNDED') return `capture ${capture.status}`;
    if (await this.periodPaid(trx, p)) {
      // Money taken for a period another payment of ours already paid: it goes back, whole.
      const d = await this.setPayment(trx, p, { type: 'duplicate_capture' }, { provider_capture_id: capture.id });
      if (!d) return 'no-op';
      this.logger.error('a second capture for a period already paid: refunding it', { paymentId: p.id, captureId: capture.id });
      await requestRefund(trx, p, capture.amount, 'late_capture', 'the period was already paid by another payment');
      return 'refunded: period already paid';
    }
    const t = await this.setPayment(trx, p, { type: 'capture_completed' }, { provider_capture_id: capture.id });
    if (!t) return 'no-op';
    if (t.effects.includes('refund_in_full')) {
      await requestRefund(trx, p, p.amount, 'late_capture', `captured after the payment was ${p.status}`);
      return 'refunded: payment no longer open';
    }
    return this.completed(trx, p, vaultId);
  }

  private async completed(trx: Tx, p: PaymentRow, vaultId: string | null): Promise<string> {
    const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', p.subscription_id).forUpdate().executeTakeFirstOrThrow();
    const s = applySubscriptionEvent({ status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end }, { type: p.kind === 'initial' ? 'initial_payment_completed' : 'renewal_completed' });
    if (s?.effects.includes('refund_payment')) {
      await requestRefund(trx, p, p.amount, 'late_capture', `the subscription is ${sub.status}`);
      return 'refunded: subscription ended';
    }
    if (p.kind === 'renewal') {
      const { start } = periodWindow(sub.anchor_at!, sub.period, p.period_index);
      if (sub.cancel_at_period_end && start > new Date()) {
        // Charged in flight while the buyer cancelled at period end: a period that will not be served.
        await requestRefund(trx, p, p.amount, 'late_capture', 'renewal captured after the subscription was set to end at its period end');
        return 'refunded: subscription ends at its period end';
      }
      await recordRenewalPaid(trx, sub, p);
      return 'renewed';
    }
    if (!s?.effects.includes('grant_starts')) return 'completed';
    const anchor = new Date();
    const { start, end } = periodWindow(anchor, sub.period, 0);
    await trx.updateTable('payments').set({ period_start: start, period_end: end }).where('id', '=', p.id).execute();
    await trx.updateTable('subscriptions').set({
      status: 'active', anchor_at: anchor, paid_through: end, approval_url: null, updated_at: sql`now()`, version: sql`version + 1`,
      ...(vaultId ? { vault_id: vaultId } : {}),
    }).where('id', '=', sub.id).execute();
    await startSubscriptionGrant(trx, sub, 'subscription activated');
    await notifyActivated(trx, sub, start, end);
    // A past_due subscription granting the same role is replaced, without refund (SPEC §3).
    const replaced = await trx.selectFrom('subscriptions').selectAll().where('user_id', '=', sub.user_id).where('role', '=', sub.role)
      .where('status', '=', 'past_due').where('id', '!=', sub.id).forUpdate().execute();
    for (const old of replaced) {
      await trx.updateTable('subscriptions').set({ status: 'cancelled', cancelled_at: anchor, updated_at: sql`now()`, version: sql`version + 1` }).where('id', '=', old.id).execute();
      await endSubscriptionGrant(trx, old, 'replaced by a new subscription');
      await notifyCancelled(trx, old, anchor, 0);
    }
    this.logger.info('subscription activated', { subscriptionId: sub.id, paymentId: p.id });
    return 'activated';
  }

  /** A payment failed: an initial one cancels its subscription; a renewal starts or continues dunning. */
  private async failed(trx: Tx, p: PaymentRow, reason: string): Promise<void> {
    const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', p.subscription_id).forUpdate().executeTakeFirstOrThrow();
    if (p.kind === 'renewal') {
      await recordRenewalFailure(trx, sub, reason, this.dunningRetryMs, new Date());
      return;
    }
    const s = applySubscriptionEvent({ status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end }, { type: 'initial_payment_failed' });
    if (s) await trx.updateTable('subscriptions').set({ status: s.status, cancelled_at: sql`now()`, approval_url: null, updated_at: sql`now()`, version: sql`version + 1` }).where('id', '=', sub.id).execute();
  }

  private async reversed(trx: Tx, p: PaymentRow): Promise<string> {
    const t = await this.setPayment(trx, p, { type: 'reversed' });
    if (!t) return 'no-op';
    return (await this.loseCurrentPeriod(trx, p, 'chargeback')) ? 'reversed; subscription cancelled' : 'reversed';
  }

  /**
   * SPEC §4: losing the payment for the period in effect cancels the subscription at once, and a
   * renewal already paid for a later period comes back whole; losing a renewal paid ahead leaves
   * that period unpaid (no free period, no silent charge again: the subscription ends at its period
   * end unless the buyer resumes); an older period's payment changes nothing more.
   */
  private async loseCurrentPeriod(trx: Tx, p: PaymentRow, reason: string): Promise<boolean> {
    const now = new Date();
    if (!p.period_start || !p.period_end || p.period_end <= now) return false;
    const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', p.subscription_id).forUpdate().executeTakeFirstOrThrow();
    if (p.period_start > now) {
      await this.losePaidAhead(trx, sub, p.period_start);
      return false;
    }
    const s = applySubscriptionEvent({ status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end }, { type: 'current_payment_lost' });
    if (!s) return false;
    await trx.updateTable('subscriptions').set({ status: s.status, cancelled_at: now, updated_at: sql`now()`, version: sql`version + 1` }).where('id', '=', sub.id).execute();
    await endSubscriptionGrant(trx, sub, reason);
    let refunded = 0;
    const ahead = await trx.selectFrom('payments').selectAll().where('subscription_id', '=', sub.id).where('id', '!=', p.id)
      .where('status', 'in', [...HOLDING_MONEY]).where('period_start', '>', now).forUpdate().execute();
    for (const a of ahead) {
      const left = await refundableLeft(trx, a);
      if (left <= 0) continue;
      await requestRefund(trx, a, left, 'user_cancel', `the subscription ended (${reason}): a period paid ahead comes back`);
      refunded += left;
    }
    await notifyCancelled(trx, sub, now, refunded);
    return true;
  }

  /** A renewal paid ahead is lost: paid only up to its period's start, and renewals stop. */
  private async losePaidAhead(trx: Tx, sub: SubscriptionRow, periodStart: Date): Promise<void> {
    const paidThrough = sub.paid_through && sub.paid_through > periodStart ? periodStart : sub.paid_through;
    const s = applySubscriptionEvent({ status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end }, { type: 'cancel_at_period_end' });
    await trx.updateTable('subscriptions').set({
      paid_through: paidThrough, ...(s ? { cancel_at_period_end: true, next_retry_at: null } : {}), updated_at: sql`now()`, version: sql`version + 1`,
    }).where('id', '=', sub.id).execute();
    if (s) await notifyCancelled(trx, sub, null, 0, periodStart);
  }

  private async refunded(trx: Tx, p: PaymentRow, action: Extract<WebhookAction, { kind: 'capture_refunded' }>): Promise<string> {
    const ours = action.customId ? await trx.selectFrom('refunds').selectAll().where('id', '=', /^[0-9a-f-]{36}$/i.test(action.customId) ? action.customId : '00000000-0000-0000-0000-000000000000').where('payment_id', '=', p.id).forUpdate().executeTakeFirst() : undefined;
    if (ours) {
      if (ours.status !== 'completed') await this.refundCompleted(trx, p, ours, action.refundId);
      return 'our refund confirmed';
    }
    const known = await trx.selectFrom('refunds').select('id').where('provider_refund_id', '=', action.refundId).executeTakeFirst();
    if (known) return 'no-op';
    const refundId = randomUUID();
    await trx.insertInto('refunds').values({ id: refundId, payment_id: p.id, amount: action.amount, currency: action.currency, status: 'completed', origin: 'external', reason: 'refunded at PayPal', provider_refund_id: action.refundId }).execute();
    const total = await this.recomputeRefunded(trx, p);
    await enqueue(trx, PaymentRefunded, { userId: p.user_id, paymentId: p.id, refundId, amount: action.amount, currency: action.currency, refundedAmount: total });
    if (total >= p.amount) await this.loseCurrentPeriod(trx, p, 'refunded outside the system');
    return 'external refund recorded';
  }

  /** Sends a requested refund to PayPal (a retry reuses the same PayPal-Request-Id); no transaction is held while PayPal answers. */
  async sendRefund(db: Db, refundId: string): Promise<string> {
    const request = await db.transaction().execute(async (trx): Promise<string | RefundInput> => {
      const refund = await trx.selectFrom('refunds').selectAll().where('id', '=', refundId).forUpdate().executeTakeFirst();
      if (!refund || refund.status !== 'requested') return 'no-op';
      const p = await trx.selectFrom('payments').selectAll().where('id', '=', refund.payment_id).executeTakeFirstOrThrow();
      if (!p.provider_capture_id) {
        await trx.updateTable('refunds').set({ status: 'failed', failure_reason: 'no capture to refund', updated_at: sql`now()` }).where('id', '=', refund.id).execute();
        return 'failed: no capture';
      }
      return { captureId: p.provider_capture_id, amount: refund.amount, currency: refund.currency.trim(), refundId: refund.id, idempotencyKey: `${refund.id}:refund` };
    });
    if (typeof request === 'string') return request;
    const answer = await answerOf(this.provider.refund(request));
    return db.transaction().execute(async (trx) => {
      const refund = await trx.selectFrom('refunds').selectAll().where('id', '=', refundId).forUpdate().executeTakeFirstOrThrow();
      if (refund.status !== 'requested') return 'no-op';
      if (answer instanceof ProviderRefusedError) {
        await trx.updateTable('refunds').set({ status: 'failed', failure_reason: `${answer.status} ${answer.issue ?? ''}`.trim(), updated_at: sql`now()` }).where('id', '=', refund.id).execute();
        this.logger.error('PayPal refused a refund', { refundId: refund.id, issue: answer.issue });
        return 'refused';
      }
      const p = await trx.selectFrom('payments').selectAll().where('id', '=', refund.payment_id).forUpdate().executeTakeFirstOrThrow();
      if (answer.status === 'COMPLETED') await this.refundCompleted(trx, p, refund, answer.id);
      else await trx.updateTable('refunds').set({ status: 'pending', provider_refund_id: answer.id, updated_at: sql`now()` }).where('id', '=', refund.id).execute();
      return `refund ${answer.status}`;
    });
  }

  private async refundCompleted(trx: Tx, p: PaymentRow, refund: RefundRow, providerRefundId: string): Promise<void> {
    await trx.updateTable('refunds').set({ status: 'completed', provider_refund_id: providerRefundId, updated_at: sql`now()` }).where('id', '=', refund.id).execute();
    const total = await this.recomputeRefunded(trx, p);
    await enqueue(trx, PaymentRefunded, { userId: p.user_id, paymentId: p.id, refundId: refund.id, amount: refund.amount, currency: refund.currency.trim(), refundedAmount: total });
  }

  /** refunded_amount is what completed refunds add up to (capped at the payment's amount). */
  private async recomputeRefunded(trx: Tx, p: PaymentRow): Promise<number> {
    const r = await trx.selectFrom('refunds').select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount'), eb.val(0)).as('total'))
      .where('payment_id', '=', p.id).where('status', '=', 'completed').executeTakeFirstOrThrow();
    const total = Math.min(p.amount, Number(r.total));
    await trx.updateTable('payments').set({ refunded_amount: total, updated_at: sql`now()` }).where('id', '=', p.id).execute();
    await this.setPayment(trx, p, { type: 'refund_recorded', amount: p.amount, refundedAmount: total });
    return total;
  }
}
