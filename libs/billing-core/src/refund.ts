import type { Kysely } from 'kysely';
import type { Database } from '@billing/db';
import type { RefundInput, RefundState } from '@billing/payments';
import type { PaymentUseCaseContext } from './payment-context.js';
import { openDispute, REFUND_HELD_BY_DISPUTE } from './dispute.js';
import { payments } from './payments.js';
import { refundCompleted } from './refund-reported.js';
import { refunds } from './refunds.js';
import type { ChargeRefusal } from './renew.js';

// The use case "send a refund we recorded to PayPal" (docs/architecture.md, use cases; docs/api.md,
// refunds): `refundToSend` decides under the refund's lock (nothing to send, no capture to refund,
// or the call to make, keyed for retries); the caller calls PayPal with no transaction held and
// hands the answer to `refundAnswered`. Only a `requested` refund moves, so either runs twice safely.

/** PayPal refused the refund (a 4xx), with its HTTP status. */
export interface RefundRefusal extends ChargeRefusal {
  status: number;
}

export type RefundOutcome = 'no-op' | 'failed: no capture' | 'held: disputed' | 'refused' | `refund ${string}`;

/** What a requested refund comes to before PayPal is called: nothing, failed for want of a capture, or the call. */
export async function refundToSend(
  db: Kysely<Database>,
  refundId: string,
): Promise<'no-op' | 'failed: no capture' | 'held: disputed' | RefundInput> {
  return db
    .transaction()
    .execute(async (trx): Promise<'no-op' | 'failed: no capture' | 'held: disputed' | RefundInput> => {
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
      // PayPal refuses a refund of a disputed capture: it waits for the dispute (docs/disputes.md).
      if (await openDispute(trx, p.id)) return 'held: disputed';
      return {
        captureId: p.provider_capture_id,
        amount: refund.amount,
        currency: refund.currency,
        refundId: refund.id,
        idempotencyKey: `${refund.id}:refund`,
      };
    });
}

/**
 * PayPal's answer to a refund, recorded under its lock: refused, the refund fails with PayPal's
 * reason; COMPLETED, the payment's refunded total, its credit note and `payment.refunded`
 * (`refundCompleted`); PENDING, the refund waits for PayPal's webhook.
 */
export async function refundAnswered(
  ctx: PaymentUseCaseContext,
  db: Kysely<Database>,
  refundId: string,
  answer: RefundState | RefundRefusal,
): Promise<RefundOutcome> {
  return db.transaction().execute(async (trx): Promise<RefundOutcome> => {
    const refund = await refunds.lock(trx, refundId);
    if (!refund || refund.status !== 'requested') return 'no-op';
    if (answer instanceof Error) {
      if (answer.issue && REFUND_HELD_BY_DISPUTE.has(answer.issue) && (await openDispute(trx, refund.payment_id))) {
        ctx.logger.warn('refund held: the capture is disputed', { refundId: refund.id, issue: answer.issue });
        return 'held: disputed';
      }
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
