import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { PaymentRefunded } from '@billing/contracts';
import type { Database, PaymentRow, RefundRow } from '@billing/db';
import { isUuid } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { periodLost } from './charge-back.js';
import { payments } from './payments.js';
import { issueCreditNote } from './receipts.js';
import { refunds } from './refunds.js';

// The use case "PayPal says money went back" (docs/webhooks.md): our refund confirmed, or one made
// at PayPal recorded; either way the payment's refunded total, a credit note and
// `payment.refunded`, and a payment refunded whole outside the system loses its period.

type Tx = Transaction<Database>;

/** A refund as PayPal's webhook tells it. */
export interface RefundSeen {
  refundId: string;
  /** Our refund's id when we asked for it (PayPal's custom_id). */
  customId: string | null;
  amount: number;
  currency: string;
}

/** A refund PayPal reports for the payment `p` (locked by the caller). */
export async function refundReported(
  trx: Tx,
  p: PaymentRow,
  seen: RefundSeen,
): Promise<'our refund confirmed' | 'no-op' | 'external refund recorded'> {
  const ourId = seen.customId && isUuid(seen.customId) ? seen.customId : null;
  const ours = ourId ? await refunds.lock(trx, ourId, p.id) : undefined;
  if (ours) {
    if (ours.status !== 'completed') await refundCompleted(trx, p, ours, seen.refundId);
    return 'our refund confirmed';
  }
  const known = await trx
    .selectFrom('refunds')
    .select('id')
    .where('provider_refund_id', '=', seen.refundId)
    .executeTakeFirst();
  if (known) return 'no-op';
  const refundId = randomUUID();
  await refunds.insert(trx, {
    id: refundId,
    payment_id: p.id,
    amount: seen.amount,
    currency: seen.currency,
    status: 'completed',
    origin: 'external',
    reason: 'refunded at PayPal',
    provider_refund_id: seen.refundId,
  });
  const total = await refundedTotal(trx, p);
  const note = await creditNoteFor(
    trx,
    p,
    { id: refundId, payment_id: p.id, amount: seen.amount, currency: seen.currency },
    'refunded at PayPal',
  );
  await enqueue(trx, PaymentRefunded, {
    userId: p.user_id,
    paymentId: p.id,
    refundId,
    amount: seen.amount,
    currency: seen.currency,
    refundedAmount: total,
    creditNoteNumber: note.number,
  });
  if (total >= p.amount) await periodLost(trx, p, 'refunded outside the system');
  return 'external refund recorded';
}

/** Our refund completed at PayPal (its answer or its webhook): recorded once, with its credit note and message. */
export async function refundCompleted(
  trx: Tx,
  p: PaymentRow,
  refund: RefundRow,
  providerRefundId: string,
): Promise<void> {
  const t = await refunds.transition(
    trx,
    refund,
    { type: 'provider_completed' },
    { provider_refund_id: providerRefundId },
  );
  if (!t) return;
  const total = await refundedTotal(trx, p);
  const note = await creditNoteFor(trx, p, refund, refund.reason ?? 'refund');
  await enqueue(trx, PaymentRefunded, {
    userId: p.user_id,
    paymentId: p.id,
    refundId: refund.id,
    amount: refund.amount,
    currency: refund.currency,
    refundedAmount: total,
    creditNoteNumber: note.number,
  });
}

/** A completed refund's credit note, numbered in this transaction, naming the receipt it corrects. */
async function creditNoteFor(
  trx: Tx,
  p: PaymentRow,
  refund: Pick<RefundRow, 'id' | 'payment_id' | 'amount' | 'currency'>,
  reason: string,
) {
  const receipt = await trx
    .selectFrom('receipts')
    .select('number')
    .where('payment_id', '=', p.id)
    .where('kind', '=', 'receipt')
    .executeTakeFirst();
  return issueCreditNote(
    trx,
    refund,
    p.user_id,
    `${receipt ? `Refund against ${receipt.number}` : 'Refund'}: ${reason}`,
  );
}

/** refunded_amount is what completed refunds add up to (capped at the payment's amount). */
async function refundedTotal(trx: Tx, p: PaymentRow): Promise<number> {
  const r = await trx
    .selectFrom('refunds')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount'), eb.val(0)).as('total'))
    .where('payment_id', '=', p.id)
    .where('status', '=', 'completed')
    .executeTakeFirstOrThrow();
  const total = Math.min(p.amount, Number(r.total));
  await payments.record(trx, p, { refunded_amount: total });
  await payments.transition(trx, p, { type: 'refund_recorded', amount: p.amount, refundedAmount: total });
  return total;
}
