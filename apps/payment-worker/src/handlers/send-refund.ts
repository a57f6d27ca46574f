import type { RefundRequested } from '@billing/contracts';
import type { Db } from '@billing/db';
import { payments, refundCompleted, refunds } from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import { ProviderRefusedError, type RefundInput } from '@billing/payments';
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
export async function sendRefund(ctx: PaymentContext, db: Db, refundId: string): Promise<string> {
  const request = await db.transaction().execute(async (trx): Promise<string | RefundInput> => {
    const refund = await refunds.lock(trx, refundId);
    if (!refund || refund.status !== 'requested') return 'no-op';
    const p = await trx
      .selectFrom('payments')
      .selectAll()
      .where('id', '=', refund.payment_id)
      .executeTakeFirstOrThrow();
    if (!p.provider_capture_id) {
      await refunds.transition(trx, refund, { type: 'failed' }, { failure_reason: 'no capture to refund' });
      return 'failed: no capture';
    }
    return {
      captureId: p.provider_capture_id,
      amount: refund.amount,
      currency: refund.currency,
      refundId: refund.id,
      idempotencyKey: `${refund.id}:refund`,
    };
  });
  if (typeof request === 'string') return request;
  const answer = await answerOf(ctx.provider.refund(request));
  return db.transaction().execute(async (trx) => {
    const refund = await refunds.lock(trx, refundId);
    if (!refund || refund.status !== 'requested') return 'no-op';
    if (answer instanceof ProviderRefusedError) {
      await refunds.transition(
        trx,
        refund,
        { type: 'failed' },
        { failure_reason: `${answer.status} ${answer.issue ?? ''}`.trim() },
      );
      ctx.logger.error('PayPal refused a refund', { refundId: refund.id, issue: answer.issue });
      return 'refused';
    }
    const p = (await payments.lock(trx, { id: refund.payment_id }))!;
    if (answer.status === 'COMPLETED') await refundCompleted(trx, p, refund, answer.id);
    else await refunds.transition(trx, refund, { type: 'provider_pending' }, { provider_refund_id: answer.id });
    return `refund ${answer.status}`;
  });
}
