import { sql } from 'kysely';
import { SubscriptionPaymentMethodRequired, type ProviderEventReceived } from '@billing/contracts';
import type { Static } from 'typebox';
import { payments, subscriptions } from '@billing/billing-core';
import type { Db } from '@billing/db';
import { enqueue, type StepHandler, type WindowApply } from '@billing/messaging';
import type { Logger } from '@billing/service-kit';
import type { WebhookAction } from '@billing/payments';
import { captureApproved } from '../payments/capture.js';
import { CAPTURE_NEEDED, PaymentOutcomes, type PaymentContext, type Tx } from '../payments/outcomes.js';
import { paymentWindow, type PaymentWindow } from '../payments/window.js';

export { paymentWindow, type PaymentWindow };

/**
 * `payment.provider-event.received`: a webhook the gateway stored is applied once (the event row
 * is locked and marked processed in the same transaction); an approval is captured after that commits.
 */
export function applyProviderEvent(ctx: PaymentContext): StepHandler<typeof ProviderEventReceived> {
  // A window of one: the consumer applies these in windows (docs/messages.md, windows), this is
  // the same code for one message on its own.
  return async ({ db, envelope, logger }) => {
    const window = paymentWindow.open();
    const after = await db.transaction().execute(async (trx) => {
      const then = await applyProviderEventInWindow(ctx, db)({ trx, envelope, attempt: 0, logger, window });
      await paymentWindow.close(trx, window);
      return then;
    });
    if (after) await after();
  };
}

/**
 * The same, as one message of a window (docs/messages.md, windows): applied in the window's
 * transaction, its receipt numbered with the window's at its end; the capture an approval needs
 * is returned, to run once the window committed.
 */
export function applyProviderEventInWindow(
  ctx: PaymentContext,
  db: Db,
): WindowApply<Static<(typeof ProviderEventReceived)['schema']>, PaymentWindow> {
  return async ({ trx, envelope, logger, window }) => {
    const applied = await applyStoredEvent(
      { ...ctx, receipts: window.receipts },
      trx,
      envelope.data.providerEventRowId,
      logger,
    );
    const paymentId = applied?.paymentId;
    if (paymentId && applied.outcome === CAPTURE_NEEDED) return () => capture(ctx, db, paymentId, logger);
  };
}

async function capture(ctx: PaymentContext, db: Db, paymentId: string, logger: Logger): Promise<void> {
  logger.info('order captured', { paymentId, outcome: await captureApproved(ctx, db, paymentId) });
}

/** A stored webhook applied in the caller's transaction, once: its row is locked and marked processed. */
async function applyStoredEvent(
  ctx: PaymentContext,
  trx: Tx,
  rowId: string,
  logger: Logger,
): Promise<{ paymentId: string | null; outcome: string } | null> {
  const event = await trx
    .selectFrom('provider_events')
    .selectAll()
    .where('id', '=', rowId)
    .forUpdate()
    .executeTakeFirst();
  if (!event) return null;
  if (event.processed_at) {
    // Applied before; an approval whose capture never happened (a crash after this step) is captured now.
    return event.event_type === 'CHECKOUT.ORDER.APPROVED' && event.payment_id
      ? { paymentId: event.payment_id, outcome: CAPTURE_NEEDED }
      : null;
  }
  const result = await applyWebhookAction(ctx, trx, ctx.provider.parseWebhook(event.payload));
  await trx
    .updateTable('provider_events')
    .set({ processed_at: sql`now()`, outcome: result.outcome, payment_id: result.paymentId })
    .where('id', '=', event.id)
    .execute();
  logger.info('provider event applied', {
    eventType: event.event_type,
    providerEventId: event.provider_event_id,
    ...result,
  });
  return result;
}

/**
 * One parsed webhook applied to the payment it names, in the caller's transaction. Each lookup
 * locks the payment row, so concurrent copies of one event serialise and the later ones find
 * nothing left to do.
 */
export async function applyWebhookAction(
  ctx: PaymentContext,
  trx: Tx,
  action: WebhookAction,
): Promise<{ paymentId: string | null; outcome: string }> {
  const outcomes = new PaymentOutcomes(ctx);
  switch (action.kind) {
    case 'order_approved': {
      const p = await payments.lock(trx, { id: action.customId, orderId: action.orderId });
      if (!p) return { paymentId: null, outcome: 'unknown order' };
      return { paymentId: p.id, outcome: await outcomes.markApproved(trx, p) };
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
      return { paymentId: p.id, outcome: await outcomes.recordCapture(trx, p, action.capture, null) };
    }
    case 'capture_reversed': {
      const p = await payments.lock(trx, { captureId: action.captureId });
      if (!p) return { paymentId: null, outcome: 'reversal names no payment of ours' };
      return { paymentId: p.id, outcome: await outcomes.chargedBack(trx, p) };
    }
    case 'capture_refunded': {
      const p = await payments.lock(trx, { captureId: action.captureId });
      if (!p) return { paymentId: null, outcome: 'refund names no capture of ours' };
      return { paymentId: p.id, outcome: await outcomes.refundReported(trx, p, action) };
    }
    case 'order_voided': {
      const p = await payments.lock(trx, { id: action.customId, orderId: action.orderId });
      if (!p) return { paymentId: null, outcome: 'unknown order' };
      const t = await payments.transition(trx, p, { type: 'voided' });
      if (t) await outcomes.paymentFailed(trx, p, 'voided');
      return { paymentId: p.id, outcome: t ? 'voided' : 'no-op' };
    }
    case 'vault_token_created': {
      const p = await payments.lock(trx, { id: action.customId, orderId: action.orderId });
      if (!p) return { paymentId: null, outcome: 'vault token for no payment of ours' };
      const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
      if (!sub.vault_id) await subscriptions.record(trx, sub, { vault_id: action.vaultId });
      return { paymentId: p.id, outcome: 'vault id kept' };
    }
    case 'vault_token_deleted': {
      const subs = await trx
        .selectFrom('subscriptions')
        .selectAll()
        .where('vault_id', '=', action.vaultId)
        .forUpdate()
        .execute();
      // docs/api.md, …/payment-method: the buyer revoked the saved wallet. It is not charged again; the buyer is
      // told now and may save a new one; the next renewal finds no method and waits for it.
      for (const sub of subs) {
        if (sub.status !== 'active' && sub.status !== 'past_due' && sub.status !== 'trialing') {
          await subscriptions.record(trx, sub, { vault_id: null });
          continue;
        }
        await subscriptions.record(trx, sub, {
          vault_id: null,
          next_retry_at: null,
          payment_method_required: 'payment_token_deleted',
        });
        await enqueue(trx, SubscriptionPaymentMethodRequired, {
          userId: sub.user_id,
          subscriptionId: sub.id,
          planId: sub.plan_id,
          planName: sub.plan_name,
          reason: 'payment_token_deleted',
        });
      }
      return { paymentId: null, outcome: `payment method removed from ${subs.length} subscription(s)` };
    }
    case 'not_supported':
      return { paymentId: null, outcome: `ignored ${action.eventType}` };
  }
}
