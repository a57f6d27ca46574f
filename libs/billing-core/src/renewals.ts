import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import {
  RenewalChargeRequested,
  SubscriptionActivated,
  SubscriptionExpired,
  SubscriptionRenewalFailed,
  SubscriptionRenewed,
} from '@billing/contracts';
import type { Database, PaymentRow, SubscriptionRow } from '@billing/db';
import { HOLDING_MONEY, isLive, OPEN_PAYMENT_STATUSES } from '@billing/domain';
import { enqueue, enqueueMany } from '@billing/messaging';
import { pricesOfPeriods } from './period-prices.js';
import { endSubscriptionGrant } from './grants.js';
import { indexAt, windowOf } from './periods.js';
import { payments } from './payments.js';
import { aboutSubscription, subscriptions } from './subscriptions.js';

type Tx = Transaction<Database>;

/**
 * Renewal payments for due subscriptions the caller has locked (FOR UPDATE), set-based: one
 * statement reads every period's payments, two price them, one inserts the payments, one touches
 * the subscriptions and one queues their charge messages, whatever their number. The scan that
 * found them judged "no open renewal" on its own snapshot: a replica that committed since then may
 * have claimed a row already, so the periods are read again here, with the rows locked, and a
 * period with a payment open or holding money is skipped. (The unique index on open renewals
 * backs it.) Returns how many were claimed.
 */
export async function claimRenewals(trx: Tx, due: SubscriptionRow[]): Promise<number> {
  if (due.length === 0) return 0;
  const items = due.map((sub) => ({ sub, k: indexAt(sub, sub.paid_through!) }));
  const periods = await sql<{ id: string; k: number; attempts: number; taken: number }>`
    select x.id, x.k, count(p.id)::int as attempts,
      (count(p.id) filter (where p.status in (${sql.join([...OPEN_PAYMENT_STATUSES, ...HOLDING_MONEY])})))::int as taken
    from unnest(${items.map((i) => i.sub.id)}::uuid[], ${items.map((i) => i.k)}::int[]) as x(id, k)
    left join payments p on p.subscription_id = x.id and p.period_index = x.k
    group by x.id, x.k`.execute(trx);
  const byKey = new Map(periods.rows.map((r) => [`${r.id}:${r.k}`, r]));
  const free = items.filter((i) => (byKey.get(`${i.sub.id}:${i.k}`)?.taken ?? 0) === 0);
  if (free.length === 0) return 0;
  // A downgrade scheduled for a period's start is charged at its new price; a coupon covering it applies.
  const amounts = await pricesOfPeriods(trx, free);
  const rows = free.map((i, n) => ({
    id: randomUUID(),
    subscription_id: i.sub.id,
    user_id: i.sub.user_id,
    kind: 'renewal' as const,
    amount: amounts[n]!,
    currency: i.sub.currency,
    period_index: i.k,
    attempt: byKey.get(`${i.sub.id}:${i.k}`)?.attempts ?? 0,
  }));
  await payments.createMany(trx, rows);
  await subscriptions.touchMany(
    trx,
    free.map((i) => i.sub.id),
  );
  await enqueueMany(
    trx,
    RenewalChargeRequested,
    rows.map((r) => ({ paymentId: r.id })),
  );
  return rows.length;
}

/** A renewal payment completed: the paid period is recorded; past_due goes back to active. */
export async function recordRenewalPaid(trx: Tx, sub: SubscriptionRow, p: PaymentRow): Promise<void> {
  const { start, end } = windowOf(sub, p.period_index);
  await payments.record(trx, p, { period_start: start, period_end: end });
  const paid = renewalPaidChanges(sub, end);
  if (!(await subscriptions.transition(trx, sub, { type: 'renewal_completed' }, paid)))
    await subscriptions.record(trx, sub, paid);
  const { first, data } = renewalPaidMessage(sub, p, start, end);
  await enqueue(trx, first ? SubscriptionActivated : SubscriptionRenewed, data);
}

/** What a paid renewal period ending at `end` writes on its subscription: paid through it, dunning over. */
export function renewalPaidChanges(sub: Pick<SubscriptionRow, 'paid_through'>, end: Date) {
  const paidThrough = !sub.paid_through || end > sub.paid_through ? end : sub.paid_through;
  return { paid_through: paidThrough, dunning_started_at: null, dunning_attempts: 0, next_retry_at: null };
}

/**
 * The message a paid renewal period queues: `subscription.renewed`, or `subscription.activated` for
 * a trial's first period paid, the subscription's first payment (docs/messages.md, notifications).
 */
export function renewalPaidMessage(
  sub: SubscriptionRow,
  p: Pick<PaymentRow, 'amount' | 'currency' | 'period_index'>,
  start: Date,
  end: Date,
) {
  return {
    first: sub.trial_start !== null && p.period_index === 0,
    data: {
      ...aboutSubscription(sub),
      amount: p.amount,
      currency: p.currency,
      currentPeriodStart: start.toISOString(),
      currentPeriodEnd: end.toISOString(),
    },
  };
}

/**
 * A renewal attempt failed (docs/scheduler.md): past_due with the grant kept, retry i at the first failure
 * + DUNNING_RETRY_MS[i]; after the last, expired (now if the period has ended, else at its end).
 */
export async function recordRenewalFailure(
  trx: Tx,
  sub: SubscriptionRow,
  reason: string,
  dunningRetryMs: readonly number[],
  now: Date,
  /** docs/api.md, recovery links: where the buyer can replace the payment method, or null. */
  recoveryUrl: string | null = null,
): Promise<void> {
  if (!isLive(sub.status)) return;
  const firstFailure = sub.dunning_started_at ?? now;
  const attempts = sub.dunning_attempts + 1;
  const delay = dunningRetryMs[attempts - 1];
  const nextRetryAt =
    delay !== undefined && !sub.cancel_at_period_end ? new Date(firstFailure.getTime() + delay) : null;
  const dunning = { dunning_started_at: firstFailure, dunning_attempts: attempts, next_retry_at: nextRetryAt };
  if (!(await subscriptions.transition(trx, sub, { type: 'renewal_failed' }, dunning)))
    await subscriptions.record(trx, sub, dunning);
  await enqueue(trx, SubscriptionRenewalFailed, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    amount: sub.amount,
    currency: sub.currency,
    reason,
    nextRetryAt: nextRetryAt?.toISOString() ?? null,
    recoveryUrl,
  });
  if (nextRetryAt) return;
  // The last try failed: the subscription ends with its paid time.
  if (sub.paid_through && sub.paid_through > now) {
    await subscriptions.transition(trx, sub, { type: 'cancel_at_period_end' });
    return;
  }
  await expire(trx, sub, now, 'dunning_exhausted');
}

/** The subscription becomes expired now and its grant ends. */
export async function expire(
  trx: Tx,
  sub: SubscriptionRow,
  now: Date,
  why: 'dunning_exhausted' | 'period_ended',
): Promise<boolean> {
  const t = await subscriptions.transition(trx, sub, { type: why }, { expired_at: now, next_retry_at: null });
  if (!t) return false;
  await endSubscriptionGrant(
    trx,
    sub,
    why === 'period_ended' ? 'subscription expired' : 'renewal failed after the last retry',
  );
  await enqueue(trx, SubscriptionExpired, { ...aboutSubscription(sub), expiredAt: now.toISOString() });
  return true;
}
