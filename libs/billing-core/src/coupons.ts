import { randomUUID } from 'node:crypto';
import { sql, type ExpressionBuilder, type Transaction } from 'kysely';
import type { CouponRow, Database } from '@billing/db';

type Tx = Transaction<Database>;

/**
 * docs/api.md, coupons at checkout: an unknown, expired, inactive or used-up coupon, or one for another currency; and
 * (docs/api.md) one the user has redeemed `max_redemptions_per_user` times already.
 */
export class CouponNotApplicable extends Error {}

/** A price with the coupon's discount (floored, never below 0; BigInt, no float holds money). */
export function discounted(amount: number, c: Pick<CouponRow, 'percent_off' | 'amount_off'>): number {
  if (c.percent_off !== null) return Number((BigInt(amount) * BigInt(100 - c.percent_off)) / 100n);
  return Math.max(0, amount - Number(c.amount_off ?? 0));
}

/**
 * What makes a coupon redeemable now by `userId` for a purchase in `currency`: active, not
 * expired, under its limit, for that currency (or any), and under its per-user limit (the caller
 * holds the user's lock, so that count cannot race with the same user).
 */
export function redeemable(o: { currency: string; userId: string }) {
  return (eb: ExpressionBuilder<Database, 'coupons'>) =>
    eb.and([
      eb('active', '=', true),
      eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]),
      eb.or([eb('max_redemptions', 'is', null), eb('redeemed', '<', eb.ref('max_redemptions'))]),
      eb.or([eb('currency', 'is', null), eb('currency', '=', o.currency)]),
      sql<boolean>`(max_redemptions_per_user is null or (select count(*) from coupon_redemptions r where r.coupon_code = coupons.code and r.user_id = ${o.userId} and r.status = 'active') < max_redemptions_per_user)`,
    ]);
}

/**
 * Takes one redemption of `code` for a subscription being bought, in the checkout's transaction:
 * one conditional UPDATE (active, not expired, under its limit, the right currency) decides, so 20
 * checkouts at once on the last redemption get it once. The checkout's rollback gives it back.
 */
export async function redeemCoupon(
  trx: Tx,
  code: string,
  o: { currency: string; userId: string; subscriptionId: string; fromPeriod?: number },
): Promise<CouponRow> {
  const coupon = await trx
    .updateTable('coupons')
    .set({ redeemed: sql`redeemed + 1`, updated_at: sql`now()` })
    .where('code', '=', code)
    .where(redeemable(o))
    .returningAll()
    .executeTakeFirst();
  if (!coupon)
    throw new CouponNotApplicable(
      `coupon "${code}" is unknown, expired, inactive, used up, not for ${o.currency}, or already redeemed by you`,
    );
  await trx
    .insertInto('coupon_redemptions')
    .values({
      id: randomUUID(),
      coupon_code: code,
      subscription_id: o.subscriptionId,
      user_id: o.userId,
      status: 'active',
      from_period: o.fromPeriod ?? 0,
    })
    .execute();
  return coupon;
}

/** A checkout cancelled or expired unpaid gives its redemption back (once). */
export async function releaseCoupon(trx: Tx, subscriptionId: string): Promise<void> {
  const released = await trx
    .updateTable('coupon_redemptions')
    .set({ status: 'released', updated_at: sql`now()` })
    .where('subscription_id', '=', subscriptionId)
    .where('status', '=', 'active')
    .returning('coupon_code')
    .executeTakeFirst();
  if (released)
    await trx
      .updateTable('coupons')
      .set({ redeemed: sql`redeemed - 1`, updated_at: sql`now()` })
      .where('code', '=', released.coupon_code)
      .execute();
}

/** A coupon as a subscription redeemed it: from which of its periods it counts. */
export type RedeemedCoupon = CouponRow & { from_period: number };

/** The coupon a subscription redeemed, if its redemption lives. */
export async function couponOf(trx: Tx, subscriptionId: string): Promise<RedeemedCoupon | undefined> {
  return trx
    .selectFrom('coupon_redemptions as r')
    .innerJoin('coupons as c', 'c.code', 'r.coupon_code')
    .selectAll('c')
    .select('r.from_period')
    .where('r.subscription_id', '=', subscriptionId)
    .where('r.status', '=', 'active')
    .executeTakeFirst();
}

/** `couponOf` for many subscriptions in one statement. */
export async function couponsOf(trx: Tx, subscriptionIds: string[]): Promise<Map<string, RedeemedCoupon>> {
  if (subscriptionIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('coupon_redemptions as r')
    .innerJoin('coupons as c', 'c.code', 'r.coupon_code')
    .selectAll('c')
    .select(['r.subscription_id as redeemed_by', 'r.from_period'])
    .where('r.subscription_id', 'in', subscriptionIds)
    .where('r.status', '=', 'active')
    .execute();
  return new Map(rows.map(({ redeemed_by, ...coupon }) => [redeemed_by as string, coupon as RedeemedCoupon]));
}

/**
 * Period k's price with the subscription's coupon, when the coupon covers k: its `durationPeriods`
 * from the period it was redeemed for (0 at checkout; a retention offer's, later).
 */
export function withCoupon(
  amount: number,
  coupon: (CouponRow & { from_period?: number }) | undefined,
  k: number,
): number {
  if (!coupon) return amount;
  const from = coupon.from_period ?? 0;
  if (k < from) return amount;
  if (coupon.duration_periods !== null && k >= from + coupon.duration_periods) return amount;
  // 0 is a free period: recorded as paid without a PayPal charge.
  return discounted(amount, coupon);
}

/** What an operator sets on a new coupon (docs/api.md, coupons at checkout). */
export interface NewCoupon {
  code: string;
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  durationPeriods: number | null;
  maxRedemptions: number | null;
  maxRedemptionsPerUser: number | null;
  expiresAt: string | null;
  /** docs/api.md, retention offer: this coupon becomes the one offered (the previous one is unmarked). */
  retentionOffer?: boolean;
}

/** A new coupon, written; undefined when one with that code exists already (nothing written). */
export async function createCoupon(trx: Tx, c: NewCoupon): Promise<CouponRow | undefined> {
  const exists = await trx.selectFrom('coupons').select('code').where('code', '=', c.code).executeTakeFirst();
  if (exists) return undefined;
  if (c.retentionOffer)
    await trx
      .updateTable('coupons')
      .set({ retention_offer: false, updated_at: sql`now()` })
      .where('retention_offer', '=', true)
      .execute();
  return trx
    .insertInto('coupons')
    .values({
      code: c.code,
      percent_off: c.percentOff,
      amount_off: c.amountOff,
      currency: c.currency,
      duration_periods: c.durationPeriods,
      max_redemptions: c.maxRedemptions,
      max_redemptions_per_user: c.maxRedemptionsPerUser,
      expires_at: c.expiresAt,
      retention_offer: c.retentionOffer ?? false,
    })
    .onConflict((oc) => oc.column('code').doNothing())
    .returningAll()
    .executeTakeFirst();
}

/** An operator turns a coupon on or off; the row as written, or undefined when there is no such coupon. */
export async function setCouponActive(trx: Tx, code: string, active: boolean): Promise<CouponRow | undefined> {
  return trx
    .updateTable('coupons')
    .set({ active, updated_at: sql`now()` })
    .where('code', '=', code)
    .returningAll()
    .executeTakeFirst();
}
