import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { startStack } from '../src/stack.js';

// docs/api.md, coupons at checkout, through the real processes: created by an operator, redeemed at
// checkout (the discount charged at the PayPal stand-in and on the receipt), exact at the limit
// under 20 checkouts at once, given back when a checkout is cancelled at PayPal.
const stack = await startStack();
t.teardown(() => stack.stop());
const db = stack.tdb.db;
const API = stack.urls['billing-api'];
const PORTAL = stack.urls['admin-portal'];

async function admin(method: string, path: string, body?: unknown) {
  const token = await stack.tokenFor('ops-coupons', ['admin']);
  const res = await fetch(`${PORTAL}/admin/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
  });
  return { status: res.status, body: (await res.json()) as any };
}
async function checkout(userId: string, couponCode?: string, planId = 'pro-monthly') {
  const token = await stack.tokenFor(userId);
  const res = await fetch(`${API}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId, ...(couponCode ? { couponCode } : {}) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const orderCreates = async (paymentId: string) =>
  ((await stack.paypal('/_control/calls')) as any[]).filter(
    (c) => c.path === '/v2/checkout/orders' && c.body?.purchase_units?.[0]?.custom_id === paymentId,
  );

t.test('an operator creates coupons; refusals are clear', async (t) => {
  t.equal(
    (
      await admin('POST', '/coupons', {
        code: 'WELCOME20',
        percentOff: 20,
        durationPeriods: 3,
        maxRedemptions: null,
        expiresAt: null,
      })
    ).status,
    201,
  );
  t.equal(
    (
      await admin('POST', '/coupons', {
        code: 'LAST-ONE',
        amountOff: 300,
        currency: 'USD',
        durationPeriods: 1,
        maxRedemptions: 3,
        expiresAt: null,
      })
    ).status,
    201,
  );
  t.equal(
    (
      await admin('POST', '/coupons', {
        code: 'BAD',
        percentOff: 10,
        amountOff: 5,
        durationPeriods: null,
        maxRedemptions: null,
        expiresAt: null,
      })
    ).status,
    400,
  );
  t.equal(
    (
      await admin('POST', '/coupons', {
        code: 'WELCOME20',
        percentOff: 5,
        durationPeriods: null,
        maxRedemptions: null,
        expiresAt: null,
      })
    ).status,
    400,
    'a code once',
  );
  const list = await admin('GET', '/coupons');
  t.same(list.body.items.map((c: any) => c.code).sort(), ['LAST-ONE', 'WELCOME20']);
});

t.test('redeemed at checkout: the discounted price at PayPal and on the receipt', async (t) => {
  const res = await checkout('user-coupon', 'WELCOME20');
  t.equal(res.status, 201);
  const payment = await db
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', res.body.paymentId)
    .executeTakeFirstOrThrow();
  t.equal(payment.amount, Math.floor((999 * 80) / 100), '20% off 9.99: 7.99');
  t.same(
    (await orderCreates(payment.id)).map((c) => c.body.purchase_units[0].amount),
    [{ currency_code: 'USD', value: '7.99' }],
  );
  await stack.paypal(`/_control/orders/${new URL(res.body.approvalUrl).searchParams.get('token')}/approve`, {});
  const receipt = await waitFor(
    () => db.selectFrom('receipts').selectAll().where('payment_id', '=', payment.id).executeTakeFirst(),
    { what: 'the receipt', timeoutMs: 20_000 },
  );
  t.match(receipt.description, /coupon WELCOME20: 2\.00 USD off 9\.99/);
  t.equal(receipt.amount, 799);
  const bad = await checkout('user-nocoupon', 'NOPE');
  t.equal(bad.status, 422);
  t.equal(bad.body.type, '/problems/coupon-not-applicable');
  t.equal((await checkout('user-eur', 'LAST-ONE', 'team-monthly')).status, 422, 'an amount in another currency');
  t.equal(
    await db
      .selectFrom('subscriptions')
      .select('id')
      .where('user_id', '=', 'user-nocoupon')
      .execute()
      .then((r) => r.length),
    0,
    'nothing recorded',
  );
});

t.test(
  'the last redemption, asked for by 20 checkouts at once, is taken once; a cancelled checkout gives it back',
  async (t) => {
    // Two of the three are taken; one is left.
    t.equal((await checkout('user-early-1', 'LAST-ONE')).status, 201);
    t.equal((await checkout('user-early-2', 'LAST-ONE')).status, 201);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => checkout(`user-rush-${i}`, 'LAST-ONE')));
    const won = answers.filter((a) => a.status === 201);
    t.equal(won.length, 1, 'one checkout got it');
    t.ok(
      answers.filter((a) => a.status !== 201).every((a) => a.body.type === '/problems/coupon-not-applicable'),
      'the others: 422 coupon-not-applicable',
    );
    const coupon = await db.selectFrom('coupons').selectAll().where('code', '=', 'LAST-ONE').executeTakeFirstOrThrow();
    t.equal(coupon.redeemed, 3);
    t.equal(
      (
        await db
          .selectFrom('coupon_redemptions')
          .select('id')
          .where('coupon_code', '=', 'LAST-ONE')
          .where('status', '=', 'active')
          .execute()
      ).length,
      3,
    );
    // The winner gives up at PayPal: the redemption comes back, and another buyer can take it.
    const cancel = await fetch(
      `${API}/v1/checkout/cancel?token=${new URL(won[0]!.body.approvalUrl).searchParams.get('token')}`,
      {
        redirect: 'manual',
      },
    );
    t.equal(cancel.status, 303);
    t.equal(
      (await db.selectFrom('coupons').select('redeemed').where('code', '=', 'LAST-ONE').executeTakeFirstOrThrow())
        .redeemed,
      2,
    );
    t.equal((await checkout('user-late', 'LAST-ONE')).status, 201, 'taken again');
    const deactivated = await admin('PATCH', '/coupons/WELCOME20', { active: false });
    t.equal(deactivated.body.active, false);
    t.equal((await checkout('user-after', 'WELCOME20')).status, 422, 'an inactive coupon');
    await stack.quiet();
    t.same(await brokenInvariants(stack), []);
  },
);
