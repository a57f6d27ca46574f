import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, SubscriptionRow } from '@billing/db';
import type { SubscriptionTransition } from '@billing/domain';
import { payments } from './payments.js';
import { subscriptions } from './subscriptions.js';

type Tx = Transaction<Database>;

/** A paid checkout with nothing to look up: no trial, no coupon, a role the user did not hold. */
export interface PlainCheckout {
  subscriptionId: string;
  paymentId: string;
  userId: string;
  plan: { id: string; name: string; role: string; amount: number; currency: string; period: string };
}

/**
 * The common checkout in one statement (docs/api.md, `POST /v1/subscriptions`): the subscription and
 * its first payment are written only if the user has no pending, trialing or active subscription
 * granting the plan's role. The caller holds the user's lock (`lockKey`), taken by an earlier
 * statement, so no checkout of the same user can commit between this statement's snapshot and its
 * writes. Returns false with nothing written when such a subscription exists: the caller then goes
 * the long way (already subscribed, an approved checkout in progress, older checkouts replaced).
 * Each table's INSERT comes from its owner.
 */
export async function openPlainCheckout(trx: Tx, c: PlainCheckout): Promise<boolean> {
  const sub = subscriptions.insertPendingIfNone({ id: c.subscriptionId, userId: c.userId, plan: c.plan });
  const payment = payments.insertInitialFor('written', {
    id: c.paymentId,
    userId: c.userId,
    amount: c.plan.amount,
    currency: c.plan.currency,
  });
  const { rows } = await sql<{
    id: string;
  }>`with written as (${sub}), paid as (${payment}) select id from paid`.execute(trx);
  return rows.length === 1;
}

/**
 * PayPal's order for a checkout recorded in one statement, no transaction (docs/api.md, `POST
 * /v1/subscriptions`): the payment moves to `pending` with the order's id and approval link only if
 * it is still `created` (a compare and set through the machine), and the subscription keeps the
 * approval link either way. 'moved' when the payment was no longer `created` (a webhook came
 * first): the caller then records under the payment's lock.
 */
export async function recordCheckoutOrder(
  db: Kysely<Database>,
  o: { paymentId: string; subscriptionId: string; orderId: string; approvalUrl: string },
): Promise<'recorded' | 'moved'> {
  const payment = payments.updateIfStill(
    db,
    o.paymentId,
    'created',
    { type: 'order_created' },
    { provider_order_id: o.orderId, approval_url: o.approvalUrl },
  );
  const subscription = subscriptions.updateById(db, o.subscriptionId, { approval_url: o.approvalUrl });
  const { rows } = await sql<{
    n: number;
  }>`with p as (${payment}), s as (${subscription}) select (select count(*) from p)::int as n`.execute(db);
  return rows[0]!.n === 1 ? 'recorded' : 'moved';
}

/**
 * A checkout that never became a subscription (its first payment failed, was refused, abandoned
 * or expired; a trial refused): the pending subscription is cancelled at `at`, its approval link
 * cleared (docs/api.md: `approvalUrl` only while pending) and its coupon redemption given back.
 * The one way a checkout ends; null when it was no longer pending.
 */
export async function endCheckout(
  trx: Tx,
  sub: SubscriptionRow,
  at: Date = new Date(),
): Promise<SubscriptionTransition | null> {
  return subscriptions.transition(
    trx,
    sub,
    { type: 'initial_payment_failed' },
    { cancelled_at: at, approval_url: null },
  );
}
