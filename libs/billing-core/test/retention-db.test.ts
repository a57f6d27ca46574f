import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  acceptRetentionOffer,
  cancelSubscription,
  createCoupon,
  makeRetentionOffer,
  priceOfPeriod,
  redeemCoupon,
  subscriptions,
  type NewCoupon,
} from '../src/index.js';
import { firstPayment, MONTHLY } from './fixtures.js';

// The use case "a buyer about to cancel is offered the retention coupon, once" (docs/api.md,
// retention offer) against a real, migrated database.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [MONTHLY]);
const coupon = (c: Partial<NewCoupon> & { code: string }): NewCoupon => ({
  percentOff: 50,
  amountOff: null,
  currency: null,
  durationPeriods: 2,
  maxRedemptions: null,
  maxRedemptionsPerUser: 1,
  expiresAt: null,
  ...c,
});
const offer = (subId: string) =>
  db
    .transaction()
    .execute(async (trx) => makeRetentionOffer(trx, await subscriptions.lockOrThrow(trx, subId), new Date()));
const accept = (subId: string) =>
  db
    .transaction()
    .execute(async (trx) => acceptRetentionOffer(trx, await subscriptions.lockOrThrow(trx, subId), new Date()));
const price = (subId: string, k: number) =>
  db.transaction().execute(async (trx) => priceOfPeriod(trx, await subscriptions.lockOrThrow(trx, subId), k));

t.test('no retention coupon set: no offer', async (t) => {
  const c = await firstPayment(db, 'completed');
  t.equal(await offer(c.subId), null);
  t.equal(
    (
      await db
        .selectFrom('subscriptions')
        .select('retention_offered_at')
        .where('id', '=', c.subId)
        .executeTakeFirstOrThrow()
    ).retention_offered_at,
    null,
    'nothing recorded',
  );
});

t.test('offered once; accepted, the coupon counts from the next period not yet charged', async (t) => {
  await db.transaction().execute((trx) => createCoupon(trx, coupon({ code: 'OLD', retentionOffer: true })));
  await db.transaction().execute((trx) => createCoupon(trx, coupon({ code: 'STAY', retentionOffer: true })));
  t.same(
    (await db.selectFrom('coupons').select(['code', 'retention_offer']).orderBy('code').execute()).map((c) => [
      c.code,
      c.retention_offer,
    ]),
    [
      ['OLD', false],
      ['STAY', true],
    ],
    'marking a new retention coupon unmarks the old one',
  );
  const c = await firstPayment(db, 'completed');
  t.equal(await accept(c.subId), false, 'nothing to accept before an offer');
  const made = await offer(c.subId);
  t.match(made, { couponCode: 'STAY', percentOff: 50, durationPeriods: 2, price: 450 });
  const sub = await db.selectFrom('subscriptions').selectAll().where('id', '=', c.subId).executeTakeFirstOrThrow();
  t.equal(made!.fromPeriodStart, sub.paid_through!.toISOString(), 'from the next period');
  t.equal(await offer(c.subId), null, 'never offered twice');
  t.equal(await accept(c.subId), true);
  t.equal(await accept(c.subId), false, 'accepted once');
  t.match(await db.selectFrom('coupon_redemptions').selectAll().where('subscription_id', '=', c.subId).execute(), [
    { coupon_code: 'STAY', from_period: 1, status: 'active' },
  ]);
  t.same(
    await Promise.all([0, 1, 2, 3].map((k) => price(c.subId, k))),
    [900, 450, 450, 900],
    'periods 1 and 2 at half price; the one paid already and those after, full',
  );
});

t.test('no offer to a subscription with a coupon, set to end, or not active', async (t) => {
  const withCoupon = await firstPayment(db, 'completed');
  await db.transaction().execute(async (trx) => {
    await createCoupon(trx, coupon({ code: 'WELCOME' }));
    await redeemCoupon(trx, 'WELCOME', {
      currency: 'EUR',
      userId: withCoupon.userId,
      subscriptionId: withCoupon.subId,
    });
  });
  t.equal(await offer(withCoupon.subId), null, 'one coupon per subscription');
  const ending = await firstPayment(db, 'completed');
  await db.transaction().execute(async (trx) =>
    cancelSubscription(trx, await subscriptions.lockOrThrow(trx, ending.subId), 'at_period_end', new Date(), {
      by: 'user:t',
      reason: 't',
    }),
  );
  t.equal(await offer(ending.subId), null, 'set to end');
  const pending = await firstPayment(db, 'approved');
  t.equal(await offer(pending.subId), null, 'pending');
  // The coupon used up between the offer and the answer: the acceptance finds nothing to take.
  const late = await firstPayment(db, 'completed');
  t.ok(await offer(late.subId));
  await db.updateTable('coupons').set({ active: false }).where('code', '=', 'STAY').execute();
  t.equal(await accept(late.subId), false, 'no longer applicable');
});
