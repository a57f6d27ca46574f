import { sql } from 'kysely';
import type { PaymentMethodApproved } from '@billing/contracts';
import type { Db } from '@billing/db';
import { subscriptions } from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import { ProviderRefusedError } from '@billing/payments';
import { answerOf } from '../payments/capture.js';
import type { PaymentContext } from '../payments/outcomes.js';

/**
 * `payment.method.approved`: the buyer approved saving a new wallet (SPEC section 11). The setup
 * token becomes a payment token (no transaction held while PayPal answers), which replaces the
 * subscription's vault id; a past_due subscription is retried at once with it.
 */
export function paymentMethodApprovedHandler(ctx: PaymentContext): StepHandler<typeof PaymentMethodApproved> {
  return async ({ db, envelope, logger }) => {
    const outcome = await replacePaymentMethod(ctx, db, envelope.data.setupTokenId);
    logger.info('payment method approved', { setupTokenId: envelope.data.setupTokenId, outcome });
  };
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
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .selectFrom('payment_method_requests')
      .selectAll()
      .where('id', '=', request.id)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (r.status !== 'pending') return 'no-op';
    if (answer instanceof ProviderRefusedError) {
      await trx
        .updateTable('payment_method_requests')
        .set({ status: 'failed', updated_at: sql`now()` })
        .where('id', '=', r.id)
        .execute();
      return `refused: ${answer.issue}`;
    }
    const sub = await subscriptions.lockOrThrow(trx, r.subscription_id);
    await trx
      .updateTable('payment_method_requests')
      .set({ status: 'completed', payment_token_id: answer.paymentTokenId, updated_at: sql`now()` })
      .where('id', '=', r.id)
      .execute();
    if (sub.status !== 'active' && sub.status !== 'past_due') return `subscription ${sub.status}: kept for nothing`;
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
