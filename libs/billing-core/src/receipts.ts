import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { PaymentCompleted, type Envelope } from '@billing/contracts';
import type { Database, PaymentRow, ReceiptRow, RefundRow, SubscriptionRow } from '@billing/db';
import { toPayPalAmount } from '@billing/domain';
import { makeEnvelope } from '@billing/messaging';

type Tx = Transaction<Database>;

/** A message announcing a document, its `data.receiptNumber` filled in with the number it is given. */
export interface DocumentMessage {
  exchange: string;
  routingKey: string;
  envelope: Envelope;
}

/**
 * Numbers and writes a document in one statement: the counter row of its kind, currency and year
 * is bumped (and so locked until the caller's transaction commits: a rollback gives the number
 * back, so numbers have no gaps; docs/data.md, receipts), the document is inserted with that
 * number, and its message, if any, is queued in the outbox with the number in it. One round trip
 * where four statements took four: the counter, which every completion in the currency waits
 * for, is held from here to the commit only. The year is the database's, in UTC.
 */
async function issueNumbered(
  trx: Tx,
  kind: 'R' | 'C',
  doc: Pick<ReceiptRow, 'kind' | 'payment_id' | 'refund_id' | 'user_id' | 'amount' | 'currency' | 'description'>,
  message?: DocumentMessage,
): Promise<ReceiptRow> {
  const issue = sql`
    with n as (
      insert into document_counters (kind, currency, year, last)
      values (${kind}, ${doc.currency}, extract(year from now() at time zone 'UTC')::int, 1)
      on conflict (kind, currency, year) do update set last = document_counters.last + 1
      returning year, last
    ), r as (
      insert into receipts (id, number, kind, payment_id, refund_id, user_id, amount, currency, description, year, sequence)
      select ${randomUUID()}::uuid,
        ${kind} || '-' || n.year || '-' || ${doc.currency} || '-' ||
          case when length(n.last::text) >= 6 then n.last::text else lpad(n.last::text, 6, '0') end,
        ${doc.kind}, ${doc.payment_id}::uuid, ${doc.refund_id}::uuid, ${doc.user_id}, ${doc.amount}::bigint,
        ${doc.currency}, ${doc.description}, n.year, n.last
      from n
      returning *
    )`;
  const rows = message
    ? await sql<ReceiptRow>`${issue}, queued as (
        insert into outbox (id, exchange, routing_key, type, envelope, headers)
        select ${randomUUID()}::uuid, ${message.exchange}, ${message.routingKey}, ${message.envelope.type},
          jsonb_set(${JSON.stringify(message.envelope)}::jsonb, '{data,receiptNumber}', to_jsonb(r.number)), '{}'::jsonb
        from r
      ) select * from r`.execute(trx)
    : await sql<ReceiptRow>`${issue} select * from r`.execute(trx);
  return rows.rows[0]!;
}

/**
 * What a completed payment's receipt says (the plan, what was paid for, its period, the coupon's
 * discount) and the `payment.completed` message it queues, its number filled in when it is issued.
 */
export function paymentReceipt(
  p: Pick<
    PaymentRow,
    'id' | 'user_id' | 'subscription_id' | 'kind' | 'amount' | 'currency' | 'period_start' | 'period_end'
  >,
  sub: Pick<SubscriptionRow, 'plan_name' | 'plan_id' | 'amount'>,
  coupon: { code: string } | undefined,
  publicBaseUrl = 'http://127.0.0.1:3000',
): { description: string; message: DocumentMessage } {
  const what = { initial: 'subscription', renewal: 'renewal', upgrade: 'plan change' }[p.kind];
  const period =
    p.period_start && p.period_end
      ? `, ${p.period_start.toISOString().slice(0, 10)} to ${p.period_end.toISOString().slice(0, 10)}`
      : '';
  const discount = coupon
    ? `; coupon ${coupon.code}: ${toPayPalAmount(sub.amount - p.amount, p.currency).value} ${p.currency} off ${toPayPalAmount(sub.amount, p.currency).value}`
    : '';
  const envelope = makeEnvelope(PaymentCompleted, {
    userId: p.user_id,
    paymentId: p.id,
    subscriptionId: p.subscription_id,
    kind: p.kind,
    amount: p.amount,
    currency: p.currency,
    receiptNumber: '', // filled in with the number the statement takes
    receiptUrl: `${publicBaseUrl.replace(/\/$/, '')}/v1/payments/${p.id}/receipt`,
  });
  return {
    description: `${sub.plan_name} (${sub.plan_id}): ${what}${period}${discount}`,
    message: { exchange: PaymentCompleted.exchange, routingKey: PaymentCompleted.routingKey, envelope },
  };
}

/**
 * A completed payment's receipt, issued once (a second call returns the first, and queues
 * nothing). `message`, if given, is queued with the receipt's number in `data.receiptNumber`.
 */
export async function issueReceipt(
  trx: Tx,
  p: Pick<PaymentRow, 'id' | 'user_id' | 'amount' | 'currency'>,
  description: string,
  message?: DocumentMessage,
): Promise<ReceiptRow> {
  const existing = await trx
    .selectFrom('receipts')
    .selectAll()
    .where('payment_id', '=', p.id)
    .where('kind', '=', 'receipt')
    .executeTakeFirst();
  if (existing) return existing;
  return issueNumbered(
    trx,
    'R',
    {
      kind: 'receipt',
      payment_id: p.id,
      refund_id: null,
      user_id: p.user_id,
      amount: p.amount,
      currency: p.currency,
      description,
    },
    message,
  );
}

/**
 * Receipts of one transaction, issued together at its end (docs/data.md, receipts): a batched
 * consumer applies a window of messages in one transaction and numbers their receipts with one
 * counter bump per currency, taken last, so the counter row is held from there to the commit only.
 * Numbers follow the order receipts were added. A payment that has a receipt already makes the
 * statement fail (the unique index) and the caller's window is redone one message at a time.
 */
export class ReceiptBatch {
  private readonly items: {
    p: Pick<PaymentRow, 'id' | 'user_id' | 'amount' | 'currency'>;
    description: string;
    message: DocumentMessage;
  }[] = [];

  add(p: Pick<PaymentRow, 'id' | 'user_id' | 'amount' | 'currency'>, description: string, message: DocumentMessage) {
    this.items.push({ p, description, message });
  }

  get size(): number {
    return this.items.length;
  }

  /** Issues every receipt added, one statement per currency; returns their numbers by payment id. */
  async issue(trx: Tx): Promise<Map<string, string>> {
    const numbers = new Map<string, string>();
    const currencies = [...new Set(this.items.map((i) => i.p.currency))];
    for (const currency of currencies) {
      const items = this.items.filter((i) => i.p.currency === currency);
      const k = items.length;
      const rows = await sql<{ payment_id: string; number: string }>`
        with n as (
          insert into document_counters (kind, currency, year, last)
          values ('R', ${currency}, extract(year from now() at time zone 'UTC')::int, ${k}::int)
          on conflict (kind, currency, year) do update set last = document_counters.last + ${k}::int
          returning year, last
        ), w as (
          select * from unnest(
            ${items.map(() => randomUUID())}::uuid[], ${items.map((i) => i.p.id)}::uuid[],
            ${items.map((i) => i.p.user_id)}::text[], ${items.map((i) => i.p.amount)}::bigint[],
            ${items.map((i) => i.description)}::text[], ${items.map(() => randomUUID())}::uuid[],
            ${items.map((i) => i.message.exchange)}::text[], ${items.map((i) => i.message.routingKey)}::text[],
            ${items.map((i) => i.message.envelope.type)}::text[],
            ${items.map((i) => JSON.stringify(i.message.envelope))}::jsonb[]
          ) with ordinality as w(id, payment_id, user_id, amount, description, outbox_id, exchange, routing_key, type, envelope, ord)
        ), numbered as (
          select w.*, n.year, (n.last - ${k}::int + w.ord)::int as sequence from w, n
        ), r as (
          insert into receipts (id, number, kind, payment_id, refund_id, user_id, amount, currency, description, year, sequence)
          select id, 'R-' || year || '-' || ${currency} || '-' ||
              case when length(sequence::text) >= 6 then sequence::text else lpad(sequence::text, 6, '0') end,
            'receipt', payment_id, null, user_id, amount, ${currency}, description, year, sequence
          from numbered
          returning payment_id, number
        ), queued as (
          insert into outbox (id, exchange, routing_key, type, envelope, headers)
          select numbered.outbox_id, numbered.exchange, numbered.routing_key, numbered.type,
            jsonb_set(numbered.envelope, '{data,receiptNumber}', to_jsonb(r.number)), '{}'::jsonb
          from numbered join r on r.payment_id = numbered.payment_id
        )
        select payment_id, number from r`.execute(trx);
      for (const r of rows.rows) numbers.set(r.payment_id, r.number);
    }
    this.items.length = 0;
    return numbers;
  }
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
  return issueNumbered(trx, 'C', {
    kind: 'credit_note',
    payment_id: refund.payment_id,
    refund_id: refund.id,
    user_id: userId,
    amount: refund.amount,
    currency: refund.currency,
    description,
  });
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
