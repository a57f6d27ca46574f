import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { PlanChangeChargeRequested, SubscriptionPlanChanged, SubscriptionPlanChangeFailed } from '@billing/contracts';
import type { Database, PaymentRow, PlanChangeRow, PlanRow, SubscriptionRow } from '@billing/db';
import {
  HOLDING_MONEY,
  OPEN_PAYMENT_STATUSES,
  quotePlanChange,
  type PaidAhead,
  type PlanChangeQuote,
} from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { endSubscriptionGrant, roleHeldBefore, startSubscriptionGrant } from './grants.js';
import { currentPeriod, indexAt, windowOf } from './periods.js';
import { payments } from './payments.js';
import { refundableLeft, requestRefund } from './refunds.js';
import { subscriptions } from './subscriptions.js';

// The use case "change plan" (docs/architecture.md, use cases; docs/api.md, plan changes): what a
// change would do now (the preview), the change asked for (an upgrade charged now, a change of
// period with the unused time credited, a downgrade scheduled for the period end), applied once
// its payment completed or its time came, or failed; every write through the tables' owners.

type Tx = Transaction<Database>;

/** Why a change is refused (docs/api.md, plan changes), as the API's problem codes. */
export class PlanChangeRefused extends Error {
  constructor(
    readonly code: 'not-found' | 'same-plan' | 'currency-mismatch' | 'not-changeable' | 'no-payment-method',
    message: string,
  ) {
    super(message);
  }
}

export interface PlanChangePlan {
  quote: PlanChangeQuote;
  target: PlanRow;
  period: { start: Date; end: Date };
  ahead: PaidAhead;
}

/** What a change to `planId` would do now: the preview and the change both ask this. */
export async function planChangeFor(
  db: Kysely<Database>,
  sub: SubscriptionRow,
  planId: string,
  now: Date,
): Promise<PlanChangePlan> {
  if (sub.status !== 'active')
    throw new PlanChangeRefused(
      'not-changeable',
      `only an active subscription can change plan (this one is ${sub.status})`,
    );
  if (sub.cancel_at_period_end)
    throw new PlanChangeRefused('not-changeable', 'this subscription ends at its period end: resume it first');
  const target = await db.selectFrom('plans').selectAll().where('id', '=', planId).executeTakeFirst();
  if (!target || !target.active) throw new PlanChangeRefused('not-found', `no plan "${planId}" on sale`);
  if (target.id === sub.plan_id) throw new PlanChangeRefused('same-plan', `the subscription is on ${planId} already`);
  if (target.currency !== sub.currency)
    throw new PlanChangeRefused(
      'currency-mismatch',
      `${planId} is priced in ${target.currency}, the subscription in ${sub.currency}`,
    );
  const period = currentPeriod(sub, now);
  if (!period) throw new PlanChangeRefused('not-changeable', 'the subscription has no period yet');
  const ahead = await paidAhead(db, sub, period);
  const quote = quotePlanChange(
    { amount: sub.amount, period: sub.period },
    { amount: target.amount, period: target.period },
    period,
    now,
    ahead,
  );
  return { quote, target, period, ahead };
}

/**
 * The periods after `period` already paid (a renewal charged ahead of the boundary) and the money
 * held for them (docs/guarantees.md, plan changes). A renewal still being charged for a later
 * period refuses the change: its price was fixed at the claim, and the change could not cover it.
 */
async function paidAhead(
  db: Kysely<Database>,
  sub: SubscriptionRow,
  period: { start: Date; end: Date },
): Promise<PaidAhead> {
  const k = indexAt(sub, period.start);
  const later = await db
    .selectFrom('payments')
    .select(['id', 'status', 'amount', 'refunded_amount', 'period_index'])
    .where('subscription_id', '=', sub.id)
    .where('period_index', '>', k)
    .where('kind', 'in', ['renewal', 'upgrade'])
    .where('status', 'in', [...OPEN_PAYMENT_STATUSES, ...HOLDING_MONEY])
    .execute();
  if (later.some((p) => (OPEN_PAYMENT_STATUSES as readonly string[]).includes(p.status)))
    throw new PlanChangeRefused(
      'not-changeable',
      'the next period is being charged at the current price; try again once that is done',
    );
  let periods = 0;
  let end = period.end;
  while (sub.paid_through && windowOf(sub, k + periods + 1).end.getTime() <= sub.paid_through.getTime()) {
    periods += 1;
    end = windowOf(sub, k + periods).end;
  }
  let paid = 0;
  for (const p of later) if (p.period_index <= k + periods) paid += await refundableLeft(db, p);
  return { periods, paid, end };
}

export type PlanChangeResult =
  | { kind: 'charging'; paymentId: string; change: PlanChangeRow }
  | { kind: 'applied'; change: PlanChangeRow }
  | { kind: 'scheduled'; change: PlanChangeRow };

/**
 * Makes the change (the subscription locked by the caller): a downgrade is scheduled for the period
 * end; a change with something due creates a payment of kind `upgrade` and asks the payment-worker
 * to charge it (the plan switches when it completes); a change with nothing due applies at once.
 * A change already waiting (a scheduled downgrade) is replaced; one being charged refuses another.
 */
export async function requestPlanChange(
  trx: Tx,
  sub: SubscriptionRow,
  planId: string,
  now: Date,
  /** The user's roles at the Auth service, read before this transaction: needed for a change to another role. */
  opts: { roles?: { names: readonly string[]; readAt: Date } } = {},
): Promise<PlanChangeResult> {
  const { quote, target } = await planChangeFor(trx, sub, planId, now);
  const open = await lockOpenChange(trx, sub.id, ['pending', 'scheduled']);
  if (open?.status === 'pending')
    throw new PlanChangeRefused('not-changeable', 'a plan change is being charged; try again once it is done');
  if (open) await dropScheduled(trx, sub, open);
  const base = {
    id: randomUUID(),
    subscription_id: sub.id,
    user_id: sub.user_id,
    from_plan_id: sub.plan_id,
    to_plan_id: target.id,
    kind: quote.kind,
    amount: quote.amountDueNow,
    credit: quote.credit,
    refund_excess: quote.refundExcess,
    currency: sub.currency,
    effective_at: quote.effectiveAt,
    // A change to another role: whether the user held that role before us (docs/auth.md).
    role_held_before:
      target.role !== sub.role && opts.roles
        ? await roleHeldBefore(trx, sub.user_id, target.role, opts.roles.names, opts.roles.readAt)
        : null,
  };
  if (quote.kind === 'downgrade') {
    const change = await trx
      .insertInto('plan_changes')
      .values({ ...base, status: 'scheduled' })
      .returningAll()
      .executeTakeFirstOrThrow();
    await subscriptions.record(trx, sub, { scheduled_plan_id: target.id, scheduled_change_at: quote.effectiveAt });
    return { kind: 'scheduled', change };
  }
  if (quote.amountDueNow === 0) {
    const change = await trx
      .insertInto('plan_changes')
      .values({ ...base, status: 'pending' })
      .returningAll()
      .executeTakeFirstOrThrow();
    await applyPlanChange(trx, sub, change, null);
    return { kind: 'applied', change };
  }
  if (!sub.vault_id)
    throw new PlanChangeRefused(
      'no-payment-method',
      'no saved PayPal wallet to charge: replace the payment method first',
    );
  // The upgrade pays for the rest of what is paid (the period in effect and any paid ahead); a
  // change of period pays the new first period, numbered after every period paid so far.
  const periodIndex = quote.kind === 'period_change' ? nextIndex(sub, now) : indexAt(sub, now);
  // (subscription, period, attempt) is unique: the change's payment is one more attempt on its period.
  const { n } = await trx
    .selectFrom('payments')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('subscription_id', '=', sub.id)
    .where('period_index', '=', periodIndex)
    .executeTakeFirstOrThrow();
  const paymentId = randomUUID();
  await payments.create(trx, {
    id: paymentId,
    subscription_id: sub.id,
    user_id: sub.user_id,
    kind: 'upgrade',
    amount: quote.amountDueNow,
    currency: sub.currency,
    period_index: periodIndex,
    attempt: Number(n),
  });
  const change = await trx
    .insertInto('plan_changes')
    .values({ ...base, status: 'pending', payment_id: paymentId })
    .returningAll()
    .executeTakeFirstOrThrow();
  await enqueue(trx, PlanChangeChargeRequested, { paymentId });
  return { kind: 'charging', paymentId, change };
}

/** The index a new period starting at `at` takes: after every period paid so far. */
function nextIndex(sub: SubscriptionRow, at: Date): number {
  return sub.paid_through && sub.paid_through > at ? indexAt(sub, sub.paid_through) : indexAt(sub, at) + 1;
}

/** A subscription's change in flight or waiting (at most one: a unique index), locked. */
function lockOpenChange(trx: Tx, subscriptionId: string, statuses: PlanChangeRow['status'][]) {
  return trx
    .selectFrom('plan_changes')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .where('status', 'in', statuses)
    .forUpdate()
    .executeTakeFirst();
}

async function dropScheduled(trx: Tx, sub: SubscriptionRow, change: PlanChangeRow): Promise<void> {
  // A renewal claimed or paid at the scheduled price binds the change: dropping it would leave the
  // dearer plan on the cheaper price (docs/guarantees.md, plan changes).
  if (sub.scheduled_change_at) {
    const bound = await trx
      .selectFrom('payments')
      .select('id')
      .where('subscription_id', '=', sub.id)
      .where('kind', '=', 'renewal')
      .where('period_index', '>=', indexAt(sub, sub.scheduled_change_at))
      .where('status', 'in', [...OPEN_PAYMENT_STATUSES, ...HOLDING_MONEY])
      .executeTakeFirst();
    if (bound)
      throw new PlanChangeRefused(
        'not-changeable',
        `the period from ${sub.scheduled_change_at.toISOString()} is already charged at the new plan's price: the change can no longer be dropped or replaced`,
      );
  }
  await trx
    .updateTable('plan_changes')
    .set({ status: 'dropped', updated_at: sql`now()` })
    .where('id', '=', change.id)
    .execute();
  await subscriptions.record(trx, sub, { scheduled_plan_id: null, scheduled_change_at: null });
}

/** `DELETE /v1/subscriptions/:id/change`: drops the scheduled change; false when there is none. */
export async function dropScheduledChange(trx: Tx, sub: SubscriptionRow): Promise<boolean> {
  const open = await lockOpenChange(trx, sub.id, ['scheduled']);
  if (!open) return false;
  await dropScheduled(trx, sub, open);
  return true;
}

/** The change a payment of kind `upgrade` pays for. */
export async function planChangeOfPayment(trx: Tx, paymentId: string): Promise<PlanChangeRow | undefined> {
  return trx.selectFrom('plan_changes').selectAll().where('payment_id', '=', paymentId).forUpdate().executeTakeFirst();
}

/**
 * The change takes effect (its payment completed, or nothing was due, or a downgrade's period
 * end came): plan, price, period and role switch; the old role ends under the grant rule and the
 * new one is granted; a change of period starts a new period at `effective_at` (the unused time
 * credited, any excess refunded against the old period's payment). Safe to call again: an applied
 * change is not applied twice.
 */
export async function applyPlanChange(
  trx: Tx,
  sub: SubscriptionRow,
  change: PlanChangeRow,
  payment: PaymentRow | null,
): Promise<boolean> {
  if (change.status === 'applied' || change.status === 'failed' || change.status === 'dropped') return false;
  const target = await trx
    .selectFrom('plans')
    .selectAll()
    .where('id', '=', change.to_plan_id)
    .executeTakeFirstOrThrow();
  const from = { id: sub.id, user_id: sub.user_id, role: sub.role };
  const at = change.effective_at;
  // The target plan's terms, and the role it holds when that changes (docs/api.md, plan changes).
  const terms = {
    plan_id: target.id,
    plan_name: target.name,
    amount: target.amount,
    period: target.period,
    role: target.role,
    ...(from.role !== target.role ? { role_held_before: change.role_held_before ?? false } : {}),
    scheduled_plan_id: null,
    scheduled_change_at: null,
  };
  let paidFor: { start: Date; end: Date };
  if (change.kind === 'period_change') {
    const k = nextIndex(sub, at) - 1;
    // The credit's excess goes back against the payments holding the time cut short, latest first.
    let excess = change.refund_excess;
    if (excess > 0) {
      const holders = await trx
        .selectFrom('payments')
        .selectAll()
        .where('subscription_id', '=', sub.id)
        .where('status', 'in', [...HOLDING_MONEY])
        .where('period_end', '>', at)
        .orderBy('period_end', 'desc')
        .orderBy('created_at', 'desc')
        .forUpdate()
        .execute();
      for (const holder of holders) {
        const amount = Math.min(excess, await refundableLeft(trx, holder));
        if (amount <= 0) continue;
        await requestRefund(trx, holder, amount, 'user_cancel', `plan change to ${target.id}: unused time credited`);
        excess -= amount;
        if (excess === 0) break;
      }
    }
    const anchored = { anchor_at: at, anchor_index: k + 1, period: target.period };
    paidFor = windowOf(anchored, k + 1);
    await subscriptions.record(trx, sub, { anchor_at: at, anchor_index: k + 1, paid_through: paidFor.end, ...terms });
  } else {
    // An upgrade covers every period paid (docs/guarantees.md): the one in effect and any paid ahead.
    const end = currentPeriod(sub, at)?.end ?? at;
    paidFor = { start: at, end: sub.paid_through && sub.paid_through > end ? sub.paid_through : end };
    await subscriptions.record(trx, sub, terms);
  }
  if (payment) await payments.record(trx, payment, { period_start: paidFor.start, period_end: paidFor.end });
  if (from.role !== target.role) {
    await endSubscriptionGrant(trx, from, `plan changed to ${target.id}`);
    await startSubscriptionGrant(trx, sub, `plan changed to ${target.id}`, change.role_held_before ?? false);
  }
  await trx
    .updateTable('plan_changes')
    .set({ status: 'applied', updated_at: sql`now()` })
    .where('id', '=', change.id)
    .execute();
  await enqueue(trx, SubscriptionPlanChanged, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    fromPlanId: change.from_plan_id,
    toPlanId: change.to_plan_id,
    effectiveAt: at.toISOString(),
    amountCharged: payment?.amount ?? 0,
    currency: sub.currency,
  });
  return true;
}

/** The change's payment failed: nothing changes but the change's status, and the buyer is told. */
export async function planChangeFailed(trx: Tx, change: PlanChangeRow, reason: string): Promise<void> {
  if (change.status !== 'pending') return;
  await trx
    .updateTable('plan_changes')
    .set({ status: 'failed', failure_reason: reason, updated_at: sql`now()` })
    .where('id', '=', change.id)
    .execute();
  await enqueue(trx, SubscriptionPlanChangeFailed, {
    userId: change.user_id,
    subscriptionId: change.subscription_id,
    fromPlanId: change.from_plan_id,
    toPlanId: change.to_plan_id,
    reason,
  });
}

/**
 * Scheduled downgrades whose time came and whose new period is paid: applied (the scheduler's
 * `plan-changes` job). A subscription whose next period is not paid keeps waiting (dunning), and
 * one that ends drops nothing: it just never renews.
 */
export async function applyDueScheduledChanges(db: Kysely<Database>, now: Date): Promise<number> {
  let applied = 0;
  for (;;) {
    const done = await db.transaction().execute(async (trx) => {
      const sub = await trx
        .selectFrom('subscriptions')
        .selectAll()
        .where('status', '=', 'active')
        .where('scheduled_change_at', '<=', now)
        .where(sql<boolean>`paid_through > scheduled_change_at`)
        .orderBy('scheduled_change_at')
        .limit(1)
        .forUpdate()
        .skipLocked()
        .executeTakeFirst();
      if (!sub) return false;
      const change = await lockOpenChange(trx, sub.id, ['scheduled']);
      if (change) await applyPlanChange(trx, sub, change, null);
      else await subscriptions.record(trx, sub, { scheduled_plan_id: null, scheduled_change_at: null });
      return true;
    });
    if (!done) break;
    applied += 1;
  }
  return applied;
}
