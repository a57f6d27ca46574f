import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { RefundRequested } from '@billing/contracts';
import type { Database, NewRefundRow, PaymentRow, RefundRow, RefundUpdate } from '@billing/db';
import { applyRefundEvent, type RefundEvent, type RefundTransition } from '@billing/domain';
import { enqueue } from '@billing/messaging';

type Tx = Transaction<Database>;

/** Columns a caller may set besides the state (the status belongs to the refund machine). */
export type RefundChanges = Pick<RefundUpdate, 'provider_refund_id' | 'failure_reason'>;

/**
 * The one writer of the `refunds` table (docs/architecture.md, "one owner per aggregate"). A
 * status change goes through the domain's refund machine in `transition`; `updated_at` is set here,
 * and the row passed in is brought up to date.
 */
export const refunds = {
  /** Locks one refund (FOR UPDATE); `paymentId` limits it to that payment's. */
  async lock(trx: Tx, id: string, paymentId?: string): Promise<RefundRow | undefined> {
    let q = trx.selectFrom('refunds').selectAll().where('id', '=', id);
    if (paymentId !== undefined) q = q.where('payment_id', '=', paymentId);
    return q.forUpdate().executeTakeFirst();
  },

  /** A new refund, as it starts: ours `requested`, one made at PayPal `completed`. */
  async insert(
    trx: Tx,
    values: Omit<NewRefundRow, 'status' | 'created_at' | 'updated_at'> & { status: 'requested' | 'completed' },
  ): Promise<void> {
    await trx.insertInto('refunds').values(values).execute();
  },

  /**
   * Applies `event` through the refund machine: the new status and `changes` in one statement. A
   * stale or repeated event writes nothing and returns null.
   */
  async transition(
    trx: Tx,
    refund: RefundRow,
    event: RefundEvent,
    changes: RefundChanges = {},
  ): Promise<RefundTransition | null> {
    const t = applyRefundEvent(refund.status, event);
    if (!t) return null;
    const row = await trx
      .updateTable('refunds')
      .set({ ...changes, status: t.status, updated_at: sql`now()` })
      .where('id', '=', refund.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    Object.assign(refund, row);
    return t;
  },
};

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
  await refunds.insert(trx, {
    id,
    payment_id: p.id,
    amount,
    currency: p.currency,
    status: 'requested',
    origin,
    reason,
    requested_by: requestedBy,
  });
  await enqueue(trx, RefundRequested, { refundId: id });
  return id;
}
