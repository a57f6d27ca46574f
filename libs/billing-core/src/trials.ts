import type { Transaction } from 'kysely';
import type { Database, SubscriptionRow } from '@billing/db';
import type { PaymentEvent } from '@billing/domain';
import { payments } from './payments.js';
import { aboutSubscription, subscriptions } from './subscriptions.js';
import { endCheckout } from './checkout.js';

/** The data of `subscription.trial_started` and `subscription.trial_will_end` (docs/api.md, free trials). */
export function trialNote(sub: SubscriptionRow) {
  return {
    ...aboutSubscription(sub),
    trialStart: sub.trial_start!.toISOString(),
    trialEnd: sub.trial_end!.toISOString(),
    amount: sub.amount,
    currency: sub.currency,
  };
}

/**
 * One trial per user and role (docs/api.md, free trials): whether this user already started one for the role
 * (a partial unique index on the same condition backs it under any race).
 */
export async function hadTrial(trx: Transaction<Database>, userId: string, role: string): Promise<boolean> {
  const started = await trx
    .selectFrom('subscriptions')
    .select('id')
    .where('user_id', '=', userId)
    .where('role', '=', role)
    .where('trial_start', 'is not', null)
    .executeTakeFirst();
  return started !== undefined;
}

/**
 * A checkout with nothing charged yet that will not go on (the buyer gave up at PayPal, PayPal
 * refused, the approval never came): its open payments end with `paymentEvent`, and the pending
 * subscription is cancelled (its coupon redemption given back). False when it was no longer pending.
 */
export async function endPendingCheckout(
  trx: Transaction<Database>,
  subscriptionId: string,
  paymentEvent: Extract<PaymentEvent, { type: 'buyer_cancelled' | 'checkout_expired' | 'provider_failed' }>,
): Promise<boolean> {
  const sub = await subscriptions.lockOrThrow(trx, subscriptionId);
  if (sub.status !== 'pending') return false;
  await payments.endOpen(trx, sub.id, paymentEvent);
  await endCheckout(trx, sub);
  return true;
}
