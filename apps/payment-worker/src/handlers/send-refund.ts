import type { RefundRequested } from '@billing/contracts';
import type { Db } from '@billing/db';
import { refundAnswered, refundToSend, type RefundOutcome } from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import { answerOf } from '../payments/capture.js';
import type { PaymentContext } from '../payments/context.js';

/** `payment.refund.requested`: a refund we recorded goes to PayPal. */
export function sendRefundHandler(ctx: PaymentContext): StepHandler<typeof RefundRequested> {
  return async ({ db, envelope, logger }) => {
    const outcome = await sendRefund(ctx, db, envelope.data.refundId);
    logger.info('refund sent', { refundId: envelope.data.refundId, outcome });
  };
}

/** Sends a requested refund to PayPal (a retry reuses the same PayPal-Request-Id); no transaction is held while PayPal answers. */
export async function sendRefund(ctx: PaymentContext, db: Db, refundId: string): Promise<RefundOutcome> {
  const request = await refundToSend(db, refundId);
  if (typeof request === 'string') return request;
  return refundAnswered(ctx, db, refundId, await answerOf(ctx.provider.refund(request)));
}
