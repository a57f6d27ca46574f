import type { PaymentMethodApproved } from '@billing/contracts';
import type { Db } from '@billing/db';
import { pendingWalletRequest, walletExpired, walletSaved, type WalletOutcome } from '@billing/billing-core';
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

export async function replacePaymentMethod(
  ctx: PaymentContext,
  db: Db,
  setupTokenId: string,
): Promise<WalletOutcome | `setup token ${string}: still waiting for the buyer`> {
  const request = await pendingWalletRequest(db, setupTokenId);
  if (!request) return 'no-op';
  const answer = await answerOf(
    ctx.provider.createPaymentToken({ setupTokenId, idempotencyKey: `${request.id}:payment-token` }),
  );
  // The return URL names a setup token anyone who saw it can send: PayPal refusing a token the buyer
  // has not approved yet ends nothing. Only the buyer's cancel or CHECKOUT_TTL_MS ends the request.
  if (answer instanceof ProviderRefusedError) {
    const status = await setupTokenStatus(ctx, setupTokenId);
    if (WAITING_FOR_BUYER.has(status)) return `setup token ${status}: still waiting for the buyer`;
  }
  return walletSaved(ctx, db, request.id, answer);
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
): Promise<Awaited<ReturnType<typeof replacePaymentMethod>> | `setup token ${string}: expired unapproved`> {
  const status = await setupTokenStatus(ctx, setupTokenId);
  if (APPROVED.has(status)) return replacePaymentMethod(ctx, db, setupTokenId);
  if (!expireUnapproved) return `setup token ${status}: still waiting for the buyer`;
  return (await walletExpired(db, setupTokenId)) ? `setup token ${status}: expired unapproved` : 'no-op';
}
