import type { Db } from '@billing/db';
import {
  CAPTURE_NEEDED,
  failWith,
  payments,
  recordOrder,
  type ChargeOutcome,
  type PaymentOutcome,
} from '@billing/billing-core';
import { ProviderRefusedError } from '@billing/payments';
import { recordAnswer, type PaymentContext } from './context.js';

/** A provider call's answer, or its refusal (a 4xx) as a value to record; an unknown outcome is thrown, to be retried. */
export async function answerOf<T>(call: Promise<T>): Promise<T | ProviderRefusedError> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ProviderRefusedError) return err;
    throw err;
  }
}

/**
 * Captures an approved payment's order (a retry reuses the same request id) and records the
 * answer; no transaction is held while PayPal answers.
 */
export async function captureApproved(ctx: PaymentContext, db: Db, paymentId: string): Promise<ChargeOutcome> {
  const p = await db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirst();
  if (!p || p.status !== 'approved' || p.provider_capture_id || !p.provider_order_id) return 'no capture needed';
  const answer = await answerOf(
    ctx.provider.capture({ orderId: p.provider_order_id, idempotencyKey: `${p.id}:capture` }),
  );
  const outcome = await recordAnswer(ctx, db, paymentId, async (trx, ctx): Promise<PaymentOutcome> => {
    const locked = (await payments.lock(trx, { id: paymentId }))!;
    if (answer instanceof ProviderRefusedError) {
      if (answer.issue === 'INSTRUMENT_DECLINED') {
        await failWith(ctx, trx, locked, { type: 'capture_declined' }, 'declined');
        return 'declined';
      }
      // A 4xx is PayPal's final word (docs/paypal.md): left approved, the payment would be captured again for ever.
      ctx.logger.warn('capture refused', { paymentId, issue: answer.issue });
      await failWith(ctx, trx, locked, { type: 'provider_failed', reason: 'provider_error' }, 'provider_error');
      return `capture refused: ${answer.issue}`;
    }
    return recordOrder(ctx, trx, locked, answer);
  });
  return outcome === CAPTURE_NEEDED ? 'capture answered without a capture' : outcome;
}
