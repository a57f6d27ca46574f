import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { SubscriptionPaused, SubscriptionResumed } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { HOLDING_MONEY, periodWindow } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { endSubscriptionGrant, startSubscriptionGrant } from './grants.js';
import { currentPeriod, indexAt, windowOf } from './periods.js';
import { payments } from './payments.js';
import { subscriptions } from './subscriptions.js';

// The use case "pause a subscription, and resume it" (docs/api.md, pause and resume): nothing is
// charged and no role is held while paused, and the time the period had left at the pause is given
// back at the resume by shifting the period anchor, what is paid through and the paid period's
// payments by the paused time.

type Tx = Transaction<Database>;

/** A plan's longest pause when it sets none. */
export const DEFAULT_MAX_PAUSE = 'P3M';

export interface PauseRefusal {
  code: 'not-pausable' | 'pause-too-long' | 'validation';
  detail: string;
}

/**
 * Pauses `sub` (locked by the caller) at `now` until `resumesAt` (by default the plan's longest
 * pause): the subscription row as written, or why not.
 */
export async function pauseSubscription(
  trx: Tx,
  sub: SubscriptionRow,
  opts: { now: Date; resumesAt?: Date | undefined; by: string },
): Promise<SubscriptionRow | PauseRefusal> {
  const { now } = opts;
  const refuse = (detail: string): PauseRefusal => ({ code: 'not-pausable', detail });
  if (sub.status === 'paused') return refuse('the subscription is paused already (one pause at a time)');
  if (sub.status !== 'active') return refuse(`a ${sub.status} subscription cannot be paused; only an active one`);
  if (sub.cancel_at_period_end) return refuse('a subscription set to end at its period end cannot be paused');
  const busy = await trx
    .selectFrom('payments')
    .select(['status', 'period_start'])
    .where('subscription_id', '=', sub.id)
    .where((eb) =>
      eb.or([
        eb('status', 'in', ['created', 'pending', 'approved']),
        eb.and([eb('status', 'in', [...HOLDING_MONEY]), eb('period_start', '>', now)]),
      ]),
    )
    .executeTakeFirst();
  if (busy)
    return refuse(
      busy.status === 'completed' || busy.status === 'partially_refunded'
        ? 'a renewal is already paid for a period not yet begun'
        : 'a payment of this subscription is under way',
    );
  const plan = await trx.selectFrom('plans').select('max_pause').where('id', '=', sub.plan_id).executeTakeFirst();
  const maxPause = plan?.max_pause ?? DEFAULT_MAX_PAUSE;
  const latest = periodWindow(now, maxPause, 0).end;
  const resumesAt = opts.resumesAt ?? latest;
  if (resumesAt.getTime() <= now.getTime()) return { code: 'validation', detail: 'resumesAt must be after now' };
  if (resumesAt.getTime() > latest.getTime())
    return {
      code: 'pause-too-long',
      detail: `a pause lasts at most ${maxPause}: resumesAt no later than ${latest.toISOString()}`,
    };
  const t = await subscriptions.transition(trx, sub, { type: 'pause' }, { paused_at: now, resumes_at: resumesAt });
  if (!t) return refuse(`a ${sub.status} subscription cannot be paused`);
  await trx
    .insertInto('subscription_pauses')
    .values({ id: randomUUID(), subscription_id: sub.id, paused_at: now, resumes_at: resumesAt, paused_by: opts.by })
    .execute();
  await endSubscriptionGrant(trx, sub, 'paused');
  await enqueue(trx, SubscriptionPaused, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    pausedAt: now.toISOString(),
    resumesAt: resumesAt.toISOString(),
  });
  return sub;
}

/**
 * Resumes a paused `sub` (locked by the caller) at `now`: active again, its grant started, and
 * everything that dates the paid period moved later by the paused time. 'no-op' when not paused.
 */
export async function resumePausedSubscription(
  trx: Tx,
  sub: SubscriptionRow,
  opts: { now: Date; by: string },
): Promise<SubscriptionRow | 'no-op'> {
  if (sub.status !== 'paused' || !sub.paused_at) return 'no-op';
  const pausedAt = sub.paused_at;
  const d = Math.max(0, opts.now.getTime() - pausedAt.getTime());
  const shift = (v: Date | null) => (v ? new Date(v.getTime() + d) : null);
  // What is paid through stays a period boundary of the shifted anchor (months vary in length), so
  // the next renewal claims the next period; a date that was that boundary moves with it.
  const anchor = shift(sub.anchor_at);
  let paidThrough = shift(sub.paid_through);
  if (anchor && sub.paid_through) {
    const k = indexAt(sub, new Date(sub.paid_through.getTime() - 1));
    paidThrough = windowOf({ ...sub, anchor_at: anchor }, k).end;
  }
  const same = (a: Date | null, b: Date | null) => Boolean(a && b && a.getTime() === b.getTime());
  const t = await subscriptions.transition(
    trx,
    sub,
    { type: 'unpause' },
    {
      paused_at: null,
      resumes_at: null,
      anchor_at: anchor,
      paid_through: paidThrough,
      scheduled_change_at: same(sub.scheduled_change_at, sub.paid_through)
        ? paidThrough
        : shift(sub.scheduled_change_at),
      renewal_reminded_for: same(sub.renewal_reminded_for, sub.paid_through)
        ? paidThrough
        : shift(sub.renewal_reminded_for),
    },
  );
  if (!t) return 'no-op';
  // The payments of the period the pause cut: their period moves with it (pro-rata refunds stay right).
  await payments.shiftPeriods(trx, sub.id, pausedAt, d);
  await trx
    .updateTable('subscription_pauses')
    .set({ resumed_at: opts.now, resumed_by: opts.by })
    .where('subscription_id', '=', sub.id)
    .where('resumed_at', 'is', null)
    .execute();
  await startSubscriptionGrant(trx, sub, 'resumed');
  await enqueue(trx, SubscriptionResumed, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    resumedAt: opts.now.toISOString(),
    currentPeriodEnd: currentPeriod(sub, opts.now)?.end.toISOString() ?? null,
  });
  return sub;
}

/**
 * docs/scheduler.md, pauses ending: the paused subscriptions whose `resumesAt` has come, resumed in
 * batches of `batch`, each in its own transaction under its lock (claimed with SKIP LOCKED, so
 * replicas never resume one twice). How many were resumed.
 */
export async function resumeDuePauses(db: Kysely<Database>, now: Date, batch = 100): Promise<number> {
  let resumed = 0;
  for (;;) {
    const n = await db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('subscriptions')
        .selectAll()
        .where('status', '=', 'paused')
        .where('resumes_at', '<=', now)
        .orderBy('resumes_at')
        .limit(batch)
        .forUpdate()
        .skipLocked()
        .execute();
      for (const sub of due) await resumePausedSubscription(trx, sub, { now, by: 'scheduler' });
      return due.length;
    });
    resumed += n;
    if (n < batch) return resumed;
  }
}
