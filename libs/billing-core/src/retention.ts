import type { Transaction } from 'kysely';
import type { CouponRow, Database, SubscriptionRow } from '@billing/db';
import { HOLDING_MONEY, OPEN_PAYMENT_STATUSES } from '@billing/domain';
import { CouponNotApplicable, redeemable, redeemCoupon, withCoupon } from './coupons.js';
import { indexAt, windowOf } from './periods.js';
import { subscriptions } from './subscriptions.js';

// The use case "a buyer about to cancel is offered the retention coupon, once" (docs/api.md,
// retention offer): the offer made (and recorded) when everything allows it, and accepted as a
// redemption that starts at the next period not yet charged.

type Tx = Transaction<Database>;

export interface RetentionOffer {
  couponCode: string;
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  durationPeriods: number | null;
  /** When the first discounted period starts. */
  fromPeriodStart: string;
  /** That period's price with the coupon. */
  price: number;
}

/** The first period of `sub` with no payment under way or holding money: where a retention coupon starts. */
async function nextUnchargedPeriod(trx: Tx, sub: SubscriptionRow): Promise<number> {
  let k = indexAt(sub, sub.paid_through!);
  const taken = await trx
    .selectFrom('payments')
    .select('period_index')
    .where('subscription_id', '=', sub.id)
    .where('period_index', '>=', k)
    .where('kind', '!=', 'upgrade')
    .where('status', 'in', [...OPEN_PAYMENT_STATUSES, ...HOLDING_MONEY])
    .execute();
  while (taken.some((p) => p.period_index === k)) k += 1;
  return k;
}

/** The retention coupon `sub` could take now, or why not (null). */
async function applicable(trx: Tx, sub: SubscriptionRow): Promise<CouponRow | null> {
  if (sub.status !== 'active' || sub.cancel_at_period_end || !sub.paid_through || !sub.anchor_at) return null;
  const held = await trx
    .selectFrom('coupon_redemptions')
    .select('id')
    .where('subscription_id', '=', sub.id)
    .executeTakeFirst();
  if (held) return null;
  const coupon = await trx
    .selectFrom('coupons')
    .selectAll()
    .where('retention_offer', '=', true)
    .where(redeemable({ currency: sub.currency, userId: sub.user_id }))
    .executeTakeFirst();
  return coupon ?? null;
}

/**
 * docs/api.md, retention offer: the offer for `sub` (locked by the caller), recorded as made, or
 * null when there is none to make (never offered twice to one subscription).
 */
export async function makeRetentionOffer(trx: Tx, sub: SubscriptionRow, now: Date): Promise<RetentionOffer | null> {
  if (sub.retention_offered_at) return null;
  const coupon = await applicable(trx, sub);
  if (!coupon) return null;
  const k = await nextUnchargedPeriod(trx, sub);
  await subscriptions.record(trx, sub, { retention_offered_at: now });
  return {
    couponCode: coupon.code,
    percentOff: coupon.percent_off,
    amountOff: coupon.amount_off === null ? null : Number(coupon.amount_off),
    currency: coupon.currency,
    durationPeriods: coupon.duration_periods,
    fromPeriodStart: windowOf(sub, k).start.toISOString(),
    price: withCoupon(sub.amount, { ...coupon, from_period: k }, k),
  };
}

/** The offer made to `sub` (locked by the caller) accepted: the coupon redeemed from the next period not yet charged. */
export async function acceptRetentionOffer(trx: Tx, sub: SubscriptionRow, now: Date): Promise<boolean> {
  if (!sub.retention_offered_at || sub.retention_accepted_at) return false;
  const coupon = await applicable(trx, sub);
  if (!coupon) return false;
  const k = await nextUnchargedPeriod(trx, sub);
  try {
    await redeemCoupon(trx, coupon.code, {
      currency: sub.currency,
      userId: sub.user_id,
      subscriptionId: sub.id,
      fromPeriod: k,
    });
  } catch (err) {
    if (err instanceof CouponNotApplicable) return false;
    throw err;
  }
  await subscriptions.record(trx, sub, { retention_accepted_at: now });
  return true;
}
