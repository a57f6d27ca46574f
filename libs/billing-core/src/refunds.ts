import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { RefundRequested } from '@billing/contracts';
import type { Database, PaymentRow, RefundRow } from '@billing/db';
import { enqueue } from '@billing/messaging';

type Tx = Transaction<Database>;

/** What of a payment is neither refunded nor being refunded. */
export async function refundableLeft(
  trx: Kysely<Database>,
  p: Pick<PaymentRow, 'id' | 'amount' | 'refunded_amount'>,
): Promise<number> {
  const r = await trx
    .selectFrom('refunds')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount'), eb.val(0)).as('total'))
    .where('payment_id', '=', p.id)
    .where('status', 'in', ['requested', 'pending', 'completed'])
    .executeTakeFirstOrThrow();
  return p.amount - Math.max(p.refunded_amount, Number(r.total));
}

/** Records a refund of ours and asks the payment-worker to send it to PayPal after the commit (retried). */
export async function requestRefund(
  trx: Tx,
  p: Pick<PaymentRow, 'id' | 'currency'>,
  amount: number,
  origin: RefundRow['origin'],
  reason: string,
  requestedBy: string | null = null,
): Promise<string> {
  const id = randomUUID();
  await trx
    .insertInto('refunds')
    .values({
      id,
      payment_id: p.id,
      amount,
      currency: p.currency,
      status: 'requested',
      origin,
      reason,
      requested_by: requestedBy,
    })
    .execute();
  await enqueue(trx, RefundRequested, { refundId: id });
  return id;
}
