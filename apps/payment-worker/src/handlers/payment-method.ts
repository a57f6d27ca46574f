import { isLive } from '@billing/domain';
import type { PaymentMethodApproved } from '@billing/contracts';
import type { Db } from '@billing/db';
import {
  endPendingCheckout,
  paidWithoutCharge,
  paymentMethodRequests,
  startTrial,
  subscriptions,
} from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import { ProviderRefusedError } from '@billing/payments';
import { answerOf } from '../payments/capture.js';
import type { PaymentContext } from '../payments/context.js';

/**
 * `payment.method.approved`: the buyer approved saving a new wallet (docs/api.md, …/payment-method). The setup
 * token becomes a payment token (no transaction held while PayPal answers), which replaces the
 * subscription's vault id; a past_due subscription is retried at once with it. For a trial checkout
 * the saved wallet starts the trial.
 */
export function paymentMethodApprovedHandler(ctx: PaymentContext): StepHandler<typeof PaymentMethodApproved> {
  return async ({ db, envelope, logger }) => {
    const { setupTokenId, source, expireUnapproved = false } = envelope.data;
    const outcome =
      source === 'reconciliation'
        ? await reconcileSetupToken(ctx, db, setupTokenId, expireUnapproved)
        : await replacePaymentMethod(ctx, db, setupTokenId);
    logger.info('payment method approved', { setupTokenId: envelope.data.setupTokenId, outcome });
  };
}

/** PayPal's setup-token statuses: CREATED, PAYER_ACTION_REQUIRED (the buyer has not approved), APPROVED, VAULTED, TOKENIZED. */
const WAITING_FOR_BUYER = new Set(['CREATED', 'PAYER_ACTION_REQUIRED']);
const APPROVED = new Set(['APPROVED', 'VAULTED', 'TOKENIZED']);

/** A setup token's status at PayPal; NOT_FOUND when PayPal does not know it. */
async function setupTokenStatus(ctx: PaymentContext, setupTokenId: string): Promise<string> {
  const token = await answerOf(ctx.provider.getSetupToken(setupTokenId));
  return token instanceof ProviderRefusedError ? 'NOT_FOUND' : token.status;
}

export async function replacePaymentMethod(ctx: PaymentContext, db: Db, setupTokenId: string): Promise<string> {
  const request = await db
    .selectFrom('payment_method_requests')
    .selectAll()
    .where('setup_token_id', '=', setupTokenId)
    .executeTakeFirst();
  if (!request || request.status !== 'pending') return 'no-op';
  const answer = await answerOf(
    ctx.provider.createPaymentToken({ setupTokenId, idempotencyKey: `${request.id}:payment-token` }),
  );
  // The return URL names a setup token anyone who saw it can send: PayPal refusing a token the buyer
  // has not approved yet ends nothing. Only the buyer's cancel or CHECKOUT_TTL_MS ends the request.
  if (answer instanceof ProviderRefusedError) {
    const status = await setupTokenStatus(ctx, setupTokenId);
    if (WAITING_FOR_BUYER.has(status)) return `setup token ${status}: still waiting for the buyer`;
  }
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .selectFrom('payment_method_requests')
      .selectAll()
      .where('id', '=', request.id)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (r.status !== 'pending') return 'no-op';
    if (answer instanceof ProviderRefusedError) {
      await paymentMethodRequests.fail(trx, r.id);
      // A checkout whose wallet PayPal would not save ends as a checkout whose payment failed.
      await endPendingCheckout(trx, r.subscription_id, { type: 'provider_failed', reason: 'provider_error' });
      return `refused: ${answer.issue}`;
    }
    const sub = await subscriptions.lockOrThrow(trx, r.subscription_id);
    await paymentMethodRequests.complete(trx, r.id, answer.paymentTokenId);
    // A checkout with nothing to charge now (docs/api.md, free trials): the saved wallet starts the trial, or
    // the first period a coupon made free is recorded as paid without a charge.
    if (sub.status === 'pending') {
      if (sub.trial_period) return startTrial(ctx, trx, sub, answer.paymentTokenId);
      const free = await trx
        .selectFrom('payments')
        .selectAll()
        .where('subscription_id', '=', sub.id)
        .where('kind', '=', 'initial')
        .where('status', '=', 'created')
        .where('amount', '=', 0)
        .forUpdate()
        .executeTakeFirst();
      if (!free) return 'no-op: nothing waits for this wallet';
      return paidWithoutCharge(ctx, trx, free, answer.paymentTokenId);
    }
    if (!isLive(sub.status)) return `subscription ${sub.status}: kept for nothing`;
    await subscriptions.record(trx, sub, {
      vault_id: answer.paymentTokenId,
      payment_method_required: null,
      payment_method_deadline: null,
      // A past_due subscription is retried at once with the new wallet (the scheduler's next pass).
      ...(sub.status === 'past_due' ? { next_retry_at: new Date() } : {}),
    });
    return sub.status === 'past_due' ? 'replaced; retrying now' : 'replaced';
  });
}

/**
 * Nobody saw the buyer come back from PayPal (the return URL never hit): the setup token is looked
 * up. Approved: saved as if the buyer had returned. Still waiting past CHECKOUT_TTL_MS: the request
 * ends, and a trial checkout with it (`checkout_expired`, as an unapproved order's checkout).
 */
export async function reconcileSetupToken(
  ctx: PaymentContext,
  db: Db,
  setupTokenId: string,
  expireUnapproved: boolean,
): Promise<string> {
  const status = await setupTokenStatus(ctx, setupTokenId);
  if (APPROVED.has(status)) return replacePaymentMethod(ctx, db, setupTokenId);
  if (!expireUnapproved) return `setup token ${status}: still waiting for the buyer`;
  return db.transaction().execute(async (trx) => {
    const subscriptionId = await paymentMethodRequests.cancelPending(trx, setupTokenId);
    if (!subscriptionId) return 'no-op';
    await endPendingCheckout(trx, subscriptionId, { type: 'checkout_expired' });
    return `setup token ${status}: expired unapproved`;
  });
}
