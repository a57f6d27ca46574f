import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database, NewPaymentRow, PaymentRow, PaymentUpdate } from '@billing/db';
import {
  applyPaymentEvent,
  HOLDING_MONEY,
  isUuid,
  type PaymentEvent,
  type PaymentStatus,
  type PaymentTransition,
} from '@billing/domain';

type Tx = Transaction<Database>;

/** Columns a caller may set besides the state (status and failure_reason belong to the state machine). */
export type PaymentChanges = Pick<
  PaymentUpdate,
  'provider_order_id' | 'provider_capture_id' | 'approval_url' | 'period_start' | 'period_end' | 'refunded_amount'
>;

/** How a payment is found: our id, PayPal's order id or its capture id, tried in that order. */
export interface PaymentRef {
  id?: string | null;
  orderId?: string | null;
  captureId?: string | null;
}

/**
 * The one writer of the `payments` table (docs/architecture.md, "one owner per aggregate"). A
 * status change goes through the domain's machine in `transition`; `updated_at` is set here, and
 * the row passed in is brought up to date, so callers go on with it.
 */
export const payments = {
  /**
   * The INSERT of a checkout's first payment for the subscription the named common table expression
   * wrote (none if it wrote none): a part of one statement (billing-core's `openPlainCheckout`).
   */
  insertInitialFor(
    written: string,
    v: { id: string; userId: string; amount: number; currency: string },
  ): RawBuilder<unknown> {
    return sql`insert into payments (id, subscription_id, user_id, kind, amount, currency, period_index, attempt, status)
      select ${v.id}::uuid, w.id, ${v.userId}::text, 'initial', ${v.amount}::bigint, ${v.currency}::char(3), 0, 0, 'created'
      from ${sql.table(written)} as w
      returning id`;
  },

  /** Locks the payment a reference names (FOR UPDATE), or finds none. */
  async lock(trx: Tx, ref: PaymentRef): Promise<PaymentRow | undefined> {
    if (ref.id && isUuid(ref.id)) {
      const p = await trx.selectFrom('payments').selectAll().where('id', '=', ref.id).forUpdate().executeTakeFirst();
      if (p) return p;
    }
    if (ref.orderId) {
      const p = await trx
        .selectFrom('payments')
        .selectAll()
        .where('provider_order_id', '=', ref.orderId)
        .forUpdate()
        .executeTakeFirst();
      if (p) return p;
    }
    if (ref.captureId)
      return trx
        .selectFrom('payments')
        .selectAll()
        .where('provider_capture_id', '=', ref.captureId)
        .forUpdate()
        .executeTakeFirst();
    return undefined;
  },

  async create(trx: Tx, values: Omit<NewPaymentRow, 'status' | 'created_at' | 'updated_at'>): Promise<void> {
    await payments.createMany(trx, [values]);
  },

  /** Many new payments in one statement. */
  async createMany(trx: Tx, rows: Omit<NewPaymentRow, 'status' | 'created_at' | 'updated_at'>[]): Promise<void> {
    if (rows.length === 0) return;
    await trx
      .insertInto('payments')
      .values(rows.map((values) => ({ ...values, status: 'created' as const })))
      .execute();
  },

  /**
   * Applies `event` through the domain's machine: the new status, its failure reason and `changes`
   * are written in one statement. A stale or repeated event writes nothing and returns null, except
   * that a capture id PayPal names is kept if the payment had none.
   */
  async transition(
    trx: Tx,
    p: PaymentRow,
    event: PaymentEvent,
    changes: PaymentChanges = {},
  ): Promise<PaymentTransition | null> {
    const t = applyPaymentEvent(p.status, event);
    if (!t) {
      if (changes.provider_capture_id && !p.provider_capture_id)
        await write(trx, p, { provider_capture_id: changes.provider_capture_id });
      return null;
    }
    await write(trx, p, {
      ...changes,
      status: t.status,
      ...(t.failureReason ? { failure_reason: t.failureReason } : {}),
    });
    return t;
  },

  /**
   * `transition` without a lock, for a payment whose status the caller knows: the machine decides
   * from `known`, and one UPDATE writes it only if the status is still `known` (compare and set).
   * 'moved' when it no longer is: the caller then takes the lock and goes through `transition`.
   */
  async transitionIfStill(
    db: Kysely<Database>,
    id: string,
    known: PaymentStatus,
    event: PaymentEvent,
    changes: PaymentChanges = {},
  ): Promise<PaymentTransition | null | 'moved'> {
    const t = applyPaymentEvent(known, event);
    if (!t) return null;
    const row = await payments.updateIfStill(db, id, known, event, changes).executeTakeFirst();
    return row ? t : 'moved';
  },

  /**
   * `transitionIfStill` as a part of one statement (a data-modifying WITH, billing-core's
   * `recordCheckoutOrder`): the UPDATE writing the machine's transition from `known` only if the
   * status is still `known`, returning the id it wrote. Throws if the machine refuses the event.
   */
  updateIfStill(
    db: Kysely<Database>,
    id: string,
    known: PaymentStatus,
    event: PaymentEvent,
    changes: PaymentChanges = {},
  ) {
    const t = applyPaymentEvent(known, event);
    if (!t) throw new Error(`a ${known} payment does not take ${event.type}`);
    return db
      .updateTable('payments')
      .set({
        ...changes,
        status: t.status,
        ...(t.failureReason ? { failure_reason: t.failureReason } : {}),
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .where('status', '=', known)
      .returning('id');
  },

  /** Writes columns outside the state (PayPal's ids, the period paid for, the refunded total). */
  async record(trx: Tx, p: PaymentRow, changes: PaymentChanges): Promise<void> {
    await write(trx, p, changes);
  },

  /**
   * docs/api.md, pause and resume: the payments holding money for a period that had not ended at
   * `pausedAt` move `ms` later with it (their period start and end), so pro-rata refunds stay right.
   */
  async shiftPeriods(trx: Tx, subscriptionId: string, pausedAt: Date, ms: number): Promise<void> {
    await trx
      .updateTable('payments')
      .set({
        period_start: sql`period_start + make_interval(secs => ${ms / 1000})`,
        period_end: sql`period_end + make_interval(secs => ${ms / 1000})`,
        updated_at: sql`now()`,
      })
      .where('subscription_id', '=', subscriptionId)
      .where('status', 'in', [...HOLDING_MONEY])
      .where('period_end', '>', pausedAt)
      .execute();
  },

  /** Ends every payment of a subscription still `created` or `pending` (locked) with `event`. */
  async endOpen(trx: Tx, subscriptionId: string, event: PaymentEvent): Promise<void> {
    const open = await trx
      .selectFrom('payments')
      .selectAll()
      .where('subscription_id', '=', subscriptionId)
      .where('status', 'in', ['created', 'pending'])
      .forUpdate()
      .execute();
    for (const p of open) await payments.transition(trx, p, event);
  },

  /**
   * Payments PayPal charged and captured in full, set-based (billing-core's `completeRenewals`,
   * which has run each through the machine to `status`): one UPDATE whatever their number, with
   * PayPal's ids and the period paid; the rows as written.
   */
  async completeMany(
    trx: Tx,
    rows: {
      id: string;
      status: PaymentStatus;
      orderId: string;
      captureId: string;
      periodStart: Date;
      periodEnd: Date;
    }[],
  ): Promise<PaymentRow[]> {
    if (rows.length === 0) return [];
    const written = await sql<PaymentRow>`
      update payments set status = v.status, provider_order_id = coalesce(payments.provider_order_id, v.order_id),
        provider_capture_id = v.capture_id, period_start = v.period_start, period_end = v.period_end, updated_at = now()
      from unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.status)}::text[],
        ${rows.map((r) => r.orderId)}::text[], ${rows.map((r) => r.captureId)}::text[],
        ${rows.map((r) => r.periodStart)}::timestamptz[], ${rows.map((r) => r.periodEnd)}::timestamptz[])
        as v(id, status, order_id, capture_id, period_start, period_end)
      where payments.id = v.id
      returning payments.*`.execute(trx);
    return written.rows;
  },

  /** Marks the payment as looked at (reconciliation asked PayPal about it) without changing it. */
  async touch(trx: Tx, id: string, at: Date): Promise<void> {
    await trx.updateTable('payments').set({ updated_at: at }).where('id', '=', id).execute();
  },
};

async function write(trx: Tx, p: PaymentRow, changes: PaymentUpdate): Promise<void> {
  const row = await trx
    .updateTable('payments')
    .set({ ...changes, updated_at: sql`now()` })
    .where('id', '=', p.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  Object.assign(p, row);
}
