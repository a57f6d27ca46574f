import { sql, type Transaction } from 'kysely';
import type { Database } from '@billing/db';
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
