import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, PaymentRow, ReceiptRow, RefundRow } from '@billing/db';

type Tx = Transaction<Database>;

/**
 * The next number of a kind, currency and year, taken in the caller's transaction: the counter
 * row stays locked until it commits, and a rollback gives the number back, so numbers have no
 * gaps (SPEC section 11). The year is the database's, in UTC.
 */
async function nextNumber(
  trx: Tx,
  kind: 'R' | 'C',
  currency: string,
): Promise<{ year: number; sequence: number; number: string }> {
  const row = await sql<{ year: number; last: number }>`
    insert into document_counters (kind, currency, year, last)
    values (${kind}, ${currency}, extract(year from now() at time zone 'UTC')::int, 1)
    on conflict (kind, currency, year) do update set last = document_counters.last + 1
    returning year, last`
    .execute(trx)
    .then((r) => r.rows[0]!);
  return {
    year: row.year,
    sequence: row.last,
    number: `${kind}-${row.year}-${currency}-${String(row.last).padStart(6, '0')}`,
  };
}

/** A completed payment's receipt, issued once (a second call returns the first). */
export async function issueReceipt(
  trx: Tx,
  p: Pick<PaymentRow, 'id' | 'user_id' | 'amount' | 'currency'>,
  description: string,
): Promise<ReceiptRow> {
  const existing = await trx
    .selectFrom('receipts')
    .selectAll()
    .where('payment_id', '=', p.id)
    .where('kind', '=', 'receipt')
    .executeTakeFirst();
  if (existing) return existing;
  const n = await nextNumber(trx, 'R', p.currency);
  return trx
    .insertInto('receipts')
    .values({
      id: randomUUID(),
      number: n.number,
      kind: 'receipt',
      payment_id: p.id,
      refund_id: null,
      user_id: p.user_id,
      amount: p.amount,
      currency: p.currency,
      description,
      year: n.year,
      sequence: n.sequence,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A completed refund's credit note, issued once. */
export async function issueCreditNote(
  trx: Tx,
  refund: Pick<RefundRow, 'id' | 'payment_id' | 'amount' | 'currency'>,
  userId: string,
  description: string,
): Promise<ReceiptRow> {
  const existing = await trx.selectFrom('receipts').selectAll().where('refund_id', '=', refund.id).executeTakeFirst();
  if (existing) return existing;
  const n = await nextNumber(trx, 'C', refund.currency);
  return trx
    .insertInto('receipts')
    .values({
      id: randomUUID(),
      number: n.number,
      kind: 'credit_note',
      payment_id: refund.payment_id,
      refund_id: refund.id,
      user_id: userId,
      amount: refund.amount,
      currency: refund.currency,
      description,
      year: n.year,
      sequence: n.sequence,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** What a receipt shows: the document, the payment it is for, and the credit notes against it. */
export interface ReceiptView {
  receipt: ReceiptRow;
  payment: PaymentRow;
  creditNotes: ReceiptRow[];
}

export async function loadReceipt(
  db: Kysely<Database>,
  paymentId: string,
  userId?: string,
): Promise<ReceiptView | null> {
  let q = db.selectFrom('receipts').selectAll().where('payment_id', '=', paymentId).where('kind', '=', 'receipt');
  if (userId !== undefined) q = q.where('user_id', '=', userId);
  const receipt = await q.executeTakeFirst();
  if (!receipt) return null;
  const [payment, creditNotes] = await Promise.all([
    db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirstOrThrow(),
    db
      .selectFrom('receipts')
      .selectAll()
      .where('payment_id', '=', paymentId)
      .where('kind', '=', 'credit_note')
      .orderBy('sequence')
      .execute(),
  ]);
  return { receipt, payment, creditNotes };
}
