import type { PaymentCheckRequested } from '@billing/contracts';
import type { Db } from '@billing/db';
import { CAPTURE_NEEDED, failWith, payments, recordOrder } from '@billing/billing-core';
import { OPEN_PAYMENT_STATUSES } from '@billing/domain';
import type { StepHandler } from '@billing/messaging';
import type { OrderState } from '@billing/payments';
import { captureApproved } from '../payments/capture.js';
import type { PaymentContext, Tx } from '../payments/context.js';

const OPEN: readonly string[] = OPEN_PAYMENT_STATUSES;

/** `payment.check.requested` (the return URL, or reconciliation): look the order up at PayPal and move the payment on. */
export function checkOrderHandler(ctx: PaymentContext): StepHandler<typeof PaymentCheckRequested> {
  return async ({ db, envelope, logger }) => {
    const outcome = await checkOrder(ctx, db, envelope.data.orderId, {
      expireUnapproved: envelope.data.expireUnapproved ?? false,
    });
    logger.info('order checked', { orderId: envelope.data.orderId, source: envelope.data.source, outcome });
  };
}

/**
 * Looks the order up and records what PayPal shows. No transaction is held while PayPal answers:
 * read, call, then record under the payment's lock (the state machine makes a stale answer a
 * no-op); a capture it calls for follows the same way. `expireUnapproved`: past the checkout's
 * time to live, an order still waiting for the buyer ends the payment.
 */
export async function checkOrder(
  ctx: PaymentContext,
  db: Db,
  orderId: string,
  { expireUnapproved }: { expireUnapproved: boolean },
): Promise<string> {
  const open = await db
    .selectFrom('payments')
    .select(['id', 'status'])
    .where('provider_order_id', '=', orderId)
    .executeTakeFirst();
  if (!open) return 'unknown order';
  if (!OPEN.includes(open.status)) return 'already settled';
  const order = await ctx.provider.getOrder(orderId);
  const outcome = await db.transaction().execute((trx) => recordLookup(ctx, trx, orderId, order, expireUnapproved));
  return outcome === CAPTURE_NEEDED ? captureApproved(ctx, db, open.id) : outcome;
}

async function recordLookup(
  ctx: PaymentContext,
  trx: Tx,
  orderId: string,
  order: OrderState,
  expireUnapproved: boolean,
): Promise<string> {
  const p = await payments.lock(trx, { orderId });
  if (!p) return 'unknown order';
  if (!OPEN.includes(p.status)) return 'already settled';
  const waitingForBuyer = !order.capture && (order.status === 'PAYER_ACTION_REQUIRED' || order.status === 'CREATED');
  if (expireUnapproved && waitingForBuyer) {
    if (p.kind === 'renewal') {
      // PayPal wants the payer, who is not there for a renewal: a failed attempt, and dunning.
      const d = await failWith(ctx, trx, p, { type: 'capture_declined' }, 'declined');
      return d ? 'renewal needs the payer: failed' : 'no-op';
    }
    const t = await failWith(ctx, trx, p, { type: 'checkout_expired' }, 'checkout_expired');
    return t ? 'checkout expired' : 'no-op';
  }
  return recordOrder(ctx, trx, p, order);
}
