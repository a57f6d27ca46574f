import type { Transaction } from 'kysely';
import type { Database, SubscriptionRow } from '@billing/db';
import { couponOf, couponsOf, withCoupon } from './coupons.js';
import { windowOf } from './periods.js';

// What a period costs (docs/api.md, plan changes and coupons at checkout): the plan's price, a
// downgrade scheduled for the period end from its effective time on, less a coupon covering it.

type Tx = Transaction<Database>;

/** `priceOfPeriod` for many (subscription, period) at once: two statements whatever their number. */
export async function pricesOfPeriods(trx: Tx, items: { sub: SubscriptionRow; k: number }[]): Promise<number[]> {
  if (items.length === 0) return [];
  const downgraded = (sub: SubscriptionRow, k: number) =>
    Boolean(sub.scheduled_plan_id && sub.scheduled_change_at && windowOf(sub, k).start >= sub.scheduled_change_at);
  const planIds = [...new Set(items.filter((i) => downgraded(i.sub, i.k)).map((i) => i.sub.scheduled_plan_id!))];
  const [plans, coupons] = await Promise.all([
    planIds.length
      ? trx.selectFrom('plans').select(['id', 'amount']).where('id', 'in', planIds).execute()
      : Promise.resolve([]),
    couponsOf(
      trx,
      items.map((i) => i.sub.id),
    ),
  ]);
  const planAmount = new Map(plans.map((p) => [p.id, p.amount]));
  return items.map(({ sub, k }) => {
    const amount = downgraded(sub, k) ? (planAmount.get(sub.scheduled_plan_id!) ?? sub.amount) : sub.amount;
    return withCoupon(amount, coupons.get(sub.id), k);
  });
}

/** The price of period k: a scheduled downgrade's from its effective time on, less a coupon covering k. */
export async function priceOfPeriod(trx: Tx, sub: SubscriptionRow, k: number): Promise<number> {
  let amount = sub.amount;
  if (sub.scheduled_plan_id && sub.scheduled_change_at && windowOf(sub, k).start >= sub.scheduled_change_at) {
    const plan = await trx
      .selectFrom('plans')
      .select('amount')
      .where('id', '=', sub.scheduled_plan_id)
      .executeTakeFirst();
    amount = plan?.amount ?? sub.amount;
  }
  // A coupon covering period k (docs/api.md, coupons at checkout: renewals included).
  return withCoupon(amount, await couponOf(trx, sub.id), k);
}
