import type { ReceiptBatch } from './receipts.js';
import { recoveryUrl } from './recovery-link.js';

/** Where the payment use cases log (a winston logger is one). */
export interface UseCaseLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

/**
 * What the use cases that apply PayPal's answers need besides the caller's transaction
 * (docs/architecture.md, billing-core owns the use cases): the payment-worker's context is one.
 */
export interface PaymentUseCaseContext {
  logger: UseCaseLogger;
  /** DUNNING_RETRY_MS: when failed renewal attempts are tried again. */
  dunningRetryMs: readonly number[];
  /** billing-api's public address, for receipt links (PUBLIC_BASE_URL). */
  publicBaseUrl?: string;
  /**
   * A window's receipts, numbered together when its transaction ends (docs/messages.md, windows);
   * without it, each receipt is numbered at once.
   */
  receipts?: ReceiptBatch;
  /**
   * Recovery links in the messages that ask the buyer to act (docs/api.md, recovery links):
   * billing-api's public address and RECOVERY_LINK_SECRET; without them, `recoveryUrl` is null.
   */
  recoveryLinks?: { baseUrl: string; secret: string };
}

/** The recovery link for a subscription's buyer, or null when links are not configured. */
export const recoveryUrlOf = (ctx: Pick<PaymentUseCaseContext, 'recoveryLinks'>, subscriptionId: string, now: Date) =>
  ctx.recoveryLinks ? recoveryUrl(ctx.recoveryLinks.baseUrl, ctx.recoveryLinks.secret, subscriptionId, now) : null;
