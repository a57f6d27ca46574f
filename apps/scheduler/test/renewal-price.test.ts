import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { renewalsJob } from '../src/jobs/renewals.job.js';

// docs/api.md, coupons at checkout: a renewal is charged at the price of its period: a coupon covering it takes its
// discount off (renewals included), a coupon whose periods are used up does not.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  {
    id: 'hourly',
    name: 'Hourly',
    description: '',
    amount: 1000,
    currency: 'USD',
    period: 'PT1H',
    role: 'h',
    active: true,
  },
]);
await db
  .insertInto('coupons')
  .values({
    code: 'TWO-HOURS',
    percent_off: 25,
    amount_off: null,
    currency: null,
    duration_periods: 2,
    max_redemptions: null,
    expires_at: null,
  })
  .execute();

async function due(periodsPaid: number) {
  const now = Date.now();
  const anchor = new Date(now - periodsPaid * 3_600_000 + 1_000);
  const id = randomUUID();
  await db
    .insertInto('subscriptions')
    .values({
      id,
      user_id: `u-${id}`,
      plan_id: 'hourly',
      plan_name: 'Hourly',
      role: 'h',
      amount: 1000,
      currency: 'USD',
      period: 'PT1H',
      status: 'active',
      anchor_at: anchor,
      paid_through: new Date(anchor.getTime() + periodsPaid * 3_600_000),
      vault_id: 'v-1',
    })
    .execute();
  await db
    .insertInto('coupon_redemptions')
    .values({ id: randomUUID(), coupon_code: 'TWO-HOURS', subscription_id: id, user_id: `u-${id}`, status: 'active' })
    .execute();
  return id;
}

t.test('period 1 is discounted, period 2 is not (the coupon covers periods 0 and 1)', async (t) => {
  const second = await due(1);
  const third = await due(2);
  await renewalsJob(db, 60_000).run(new Date());
  const price = async (id: string) =>
    await db
      .selectFrom('payments')
      .select(['amount', 'period_index'])
      .where('subscription_id', '=', id)
      .executeTakeFirstOrThrow();
  t.same(await price(second), { amount: 750, period_index: 1 }, '25% off');
  t.same(await price(third), { amount: 1000, period_index: 2 }, 'full price after the coupon');
});
