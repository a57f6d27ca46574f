import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database, NewSubscriptionRow, SubscriptionRow, SubscriptionUpdate } from '@billing/db';
import { releaseCoupon } from './coupons.js';
import { applySubscriptionEvent, type SubscriptionEvent, type SubscriptionTransition } from '@billing/domain';

type Tx = Transaction<Database>;

/** Columns a caller may set besides the state (status and cancel_at_period_end belong to the state machine). */
export type SubscriptionChanges = Omit<
  SubscriptionUpdate,
  'id' | 'status' | 'cancel_at_period_end' | 'version' | 'created_at' | 'updated_at'
>;

const stateOf = (s: Pick<SubscriptionRow, 'status' | 'cancel_at_period_end'>) => ({
  status: s.status,
  cancelAtPeriodEnd: s.cancel_at_period_end,
});

/**
 * The one writer of the `subscriptions` table (docs/architecture.md, "one owner per aggregate").
 * A state change goes through the domain's machine in `transition`; every write bumps `version`
 * and sets `updated_at` here, and the row passed in is brought up to date, so callers go on with it.
 */
export const subscriptions = {
  /**
   * The INSERT of a checkout's pending subscription that writes it only if the user has no pending,
   * trialing, active or paused subscription for the role: a part of one statement (billing-core's
   * `openPlainCheckout`), returning the id it wrote, or no row. A racing checkout's pending row
   * (the unique index `subscriptions_one_pending_per_role`) makes it write nothing, not fail.
   */
  insertPendingIfNone(v: {
    id: string;
    userId: string;
    plan: { id: string; name: string; role: string; amount: number; currency: string; period: string };
  }): RawBuilder<unknown> {
    return sql`insert into subscriptions (id, user_id, plan_id, plan_name, role, amount, currency, period, status)
      select ${v.id}::uuid, ${v.userId}::text, ${v.plan.id}::text, ${v.plan.name}::text, ${v.plan.role}::text,
        ${v.plan.amount}::bigint, ${v.plan.currency}::char(3), ${v.plan.period}::text, 'pending'
      where not exists (
        select 1 from subscriptions
        where user_id = ${v.userId} and role = ${v.plan.role} and status in ('pending', 'trialing', 'active', 'paused')
      )
      on conflict (user_id, role) where status = 'pending' do nothing
      returning id`;
  },

  /** Locks one subscription (FOR UPDATE); `userId` limits it to that user's. */
  async lock(trx: Tx, id: string, userId?: string): Promise<SubscriptionRow | undefined> {
    let q = trx.selectFrom('subscriptions').selectAll().where('id', '=', id);
    if (userId !== undefined) q = q.where('user_id', '=', userId);
    return q.forUpdate().executeTakeFirst();
  },

  async lockOrThrow(trx: Tx, id: string): Promise<SubscriptionRow> {
    const row = await subscriptions.lock(trx, id);
    if (!row) throw new Error(`subscription ${id} does not exist`);
    return row;
  },

  async create(
    trx: Tx,
    values: Omit<NewSubscriptionRow, 'status' | 'version' | 'created_at' | 'updated_at'>,
  ): Promise<void> {
    await trx
      .insertInto('subscriptions')
      .values({ ...values, status: 'pending' })
      .execute();
  },

  /**
   * Applies `event` through the domain's machine. When the machine moves the subscription, its new
   * state and `changes` (a function of the transition when they depend on it) are written in one
   * statement; a stale or repeated event writes nothing and returns null. A transition that only
   * asks for effects (a late payment to refund) leaves the row as it is.
   */
  async transition(
    trx: Tx,
    sub: SubscriptionRow,
    event: SubscriptionEvent,
    changes: SubscriptionChanges | ((t: SubscriptionTransition) => SubscriptionChanges) = {},
  ): Promise<SubscriptionTransition | null> {
    const t = applySubscriptionEvent(stateOf(sub), event);
    if (!t) return null;
    if (t.status === sub.status && t.cancelAtPeriodEnd === sub.cancel_at_period_end) return t;
    const extra = typeof changes === 'function' ? changes(t) : changes;
    const was = sub.status;
    // Leaving `paused` any other way than a resume (a cancel, a chargeback) ends the pause too (docs/api.md, pause).
    const pauseEnds = was === 'paused' && t.status !== 'paused' && event.type !== 'unpause';
    await write(trx, sub, {
      ...extra,
      ...(pauseEnds ? { paused_at: null, resumes_at: null } : {}),
      status: t.status,
      cancel_at_period_end: t.cancelAtPeriodEnd,
    });
    if (pauseEnds)
      await trx
        .updateTable('subscription_pauses')
        .set({ resumed_at: sql`now()`, resumed_by: `ended: ${t.status}` })
        .where('subscription_id', '=', sub.id)
        .where('resumed_at', 'is', null)
        .execute();
    // A checkout that never became a subscription gives its coupon redemption back (docs/api.md, coupons at checkout).
    if (was === 'pending' && t.status === 'cancelled') await releaseCoupon(trx, sub.id);
    return t;
  },

  /** Writes columns outside the state (the payment method, the paid time, dunning, the approval link). */
  async record(trx: Tx, sub: SubscriptionRow, changes: SubscriptionChanges): Promise<void> {
    await write(trx, sub, changes);
  },

  /** `record` without a lock: one UPDATE by id (a new version), for columns no state depends on. */
  async recordById(
    db: Kysely<Database>,
    id: string,
    changes: Pick<SubscriptionChanges, 'approval_url'>,
  ): Promise<void> {
    await db
      .updateTable('subscriptions')
      .set({ ...changes, updated_at: sql`now()`, version: sql`version + 1` })
      .where('id', '=', id)
      .execute();
  },

  /**
   * Subscriptions whose renewal was paid, set-based (billing-core's `completeRenewals`, which has
   * run each through the machine to `status`): one UPDATE whatever their number, paid through the
   * period, dunning cleared, a new version each; the rows as written.
   */
  async renewMany(
    trx: Tx,
    rows: { id: string; status: SubscriptionRow['status']; paidThrough: Date }[],
  ): Promise<SubscriptionRow[]> {
    if (rows.length === 0) return [];
    const written = await sql<SubscriptionRow>`
      update subscriptions set status = v.status, paid_through = v.paid_through, dunning_started_at = null,
        dunning_attempts = 0, next_retry_at = null, updated_at = now(), version = subscriptions.version + 1
      from unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.status)}::text[],
        ${rows.map((r) => r.paidThrough)}::timestamptz[]) as v(id, status, paid_through)
      where subscriptions.id = v.id
      returning subscriptions.*`.execute(trx);
    return written.rows;
  },

  /**
   * Subscriptions whose first payment completed, set-based (billing-core's `completeActivations`,
   * which has run each through the machine to `status`): one UPDATE whatever their number,
   * anchored, paid through the first period, the approval link cleared, a new version each; the
   * rows as written.
   */
  async activateMany(
    trx: Tx,
    rows: {
      id: string;
      status: SubscriptionRow['status'];
      cancelAtPeriodEnd: boolean;
      anchorAt: Date;
      paidThrough: Date;
    }[],
  ): Promise<SubscriptionRow[]> {
    if (rows.length === 0) return [];
    const written = await sql<SubscriptionRow>`
      update subscriptions set status = v.status, cancel_at_period_end = v.cancel_at_period_end,
        anchor_at = v.anchor_at, paid_through = v.paid_through, approval_url = null, updated_at = now(),
        version = subscriptions.version + 1
      from unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.status)}::text[],
        ${rows.map((r) => r.cancelAtPeriodEnd)}::boolean[], ${rows.map((r) => r.anchorAt)}::timestamptz[],
        ${rows.map((r) => r.paidThrough)}::timestamptz[]) as v(id, status, cancel_at_period_end, anchor_at, paid_through)
      where subscriptions.id = v.id
      returning subscriptions.*`.execute(trx);
    return written.rows;
  },

  /** `recordById` as a part of one statement (a data-modifying WITH, billing-core's `recordCheckoutOrder`). */
  updateById(db: Kysely<Database>, id: string, changes: Pick<SubscriptionChanges, 'approval_url'>) {
    return db
      .updateTable('subscriptions')
      .set({ ...changes, updated_at: sql`now()`, version: sql`version + 1` })
      .where('id', '=', id)
      .returning('id');
  },

  /** Marks the subscription as looked at (a renewal claimed) without changing it: no new version. */
  async touch(trx: Tx, id: string): Promise<void> {
    await subscriptions.touchMany(trx, [id]);
  },

  async touchMany(trx: Tx, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await trx
      .updateTable('subscriptions')
      .set({ updated_at: sql`now()` })
      .where('id', 'in', ids)
      .execute();
  },
};

async function write(trx: Tx, sub: SubscriptionRow, changes: SubscriptionUpdate): Promise<void> {
  const row = await trx
    .updateTable('subscriptions')
    .set({ ...changes, updated_at: sql`now()`, version: sql`version + 1` })
    .where('id', '=', sub.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  Object.assign(sub, row);
}

/** What every message about a subscription says of it: whose, which, of which plan, granting which role. */
export function aboutSubscription(sub: Pick<SubscriptionRow, 'id' | 'user_id' | 'plan_id' | 'plan_name' | 'role'>) {
  return {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    role: sub.role,
  };
}
