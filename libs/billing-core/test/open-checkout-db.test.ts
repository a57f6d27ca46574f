import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  buyerReturned,
  checkoutCancelledByBuyer,
  checkoutOrderCreated,
  CheckoutRefused,
  checkoutRefusedAtProvider,
  createCoupon,
  openCheckout,
  payments,
  vaultCheckoutOpened,
  unsentPaymentExpired,
  type CheckoutRequest,
} from '../src/index.js';

// The use case "a buyer starts a subscription" (docs/architecture.md, use cases; docs/api.md,
// POST /v1/subscriptions) against a real, migrated database: what each checkout writes, what
// refuses one with nothing written, and what PayPal's answers (an order, a setup token, a refusal) record.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
const base = { description: '', currency: 'EUR', period: 'P1M', active: true };
await importCatalog(db, [
  { ...base, id: 'p', name: 'P', role: 'r', amount: 500 },
  { ...base, id: 'tr', name: 'Trial', role: 'tr', amount: 500, trialPeriod: 'P7D' },
  { ...base, id: 'tp', name: 'Trial role, paid', role: 'tr', amount: 500 },
]);
await db.transaction().execute(async (trx) => {
  const none = { percentOff: null, amountOff: null, currency: null, durationPeriods: null, expiresAt: null };
  await createCoupon(trx, { ...none, code: 'HALF', percentOff: 50, maxRedemptions: null, maxRedemptionsPerUser: 1 });
  await createCoupon(trx, { ...none, code: 'FREE', percentOff: 100, maxRedemptions: null, maxRedemptionsPerUser: 1 });
});
const plans = {
  p: { id: 'p', name: 'P', role: 'r', amount: 500, currency: 'EUR', period: 'P1M', trial_period: null },
  tr: { id: 'tr', name: 'Trial', role: 'tr', amount: 500, currency: 'EUR', period: 'P1M', trial_period: 'P7D' },
  tp: {
    id: 'tp',
    name: 'Trial role, paid',
    role: 'tr',
    amount: 500,
    currency: 'EUR',
    period: 'P1M',
    trial_period: null,
  },
};

const request = (userId: string, over: Partial<CheckoutRequest> = {}): CheckoutRequest => ({
  subscriptionId: randomUUID(),
  paymentId: randomUUID(),
  userId,
  plan: plans.p,
  roles: [],
  rolesReadAt: new Date(),
  ...over,
});
const user = () => `u-${randomUUID().slice(0, 8)}`;
const subsOf = (userId: string) =>
  db.selectFrom('subscriptions').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
const paysOf = (userId: string) =>
  db.selectFrom('payments').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
const refusal = (code: CheckoutRefused['code']) => ({ name: 'Error', code, constructor: CheckoutRefused });

t.test('a paid checkout, then its order: the payment pending with the approval link', async (t) => {
  const u = user();
  const c = request(u);
  t.same(await openCheckout(db, c), { due: 'paid', amount: 500 });
  const o = { paymentId: c.paymentId, subscriptionId: c.subscriptionId, orderId: 'ORD-1', approvalUrl: 'https://pp/1' };
  await checkoutOrderCreated(db, o);
  t.match(await paysOf(u), [{ status: 'pending', provider_order_id: 'ORD-1', amount: 500 }]);
  t.match(await subsOf(u), [{ status: 'pending', approval_url: 'https://pp/1' }]);
});

t.test('an order recorded after a webhook moved the payment on: only PayPal ids kept', async (t) => {
  const u = user();
  const c = request(u);
  await openCheckout(db, c);
  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: c.paymentId }))!;
    await payments.transition(trx, p, { type: 'approved' });
  });
  await checkoutOrderCreated(db, {
    paymentId: c.paymentId,
    subscriptionId: c.subscriptionId,
    orderId: 'ORD-2',
    approvalUrl: 'https://pp/2',
  });
  t.match(await paysOf(u), [{ status: 'approved', provider_order_id: 'ORD-2' }], 'approved stays, the order kept');
});

t.test('a second checkout for the role replaces the unfinished one; a live or approved one refuses', async (t) => {
  const u = user();
  const first = request(u);
  await openCheckout(db, first);
  const second = request(u, { roles: ['r'], rolesReadAt: new Date() });
  t.same(await openCheckout(db, second), { due: 'paid', amount: 500 }, 'the long way (the role held)');
  const subs = await subsOf(u);
  t.match(subs, [
    { id: first.subscriptionId, status: 'cancelled', approval_url: null },
    { id: second.subscriptionId, status: 'pending' },
  ]);
  t.match(await paysOf(u), [
    { id: first.paymentId, status: 'cancelled', failure_reason: 'replaced' },
    { id: second.paymentId, status: 'created' },
  ]);

  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: second.paymentId }))!;
    await payments.transition(trx, p, { type: 'approved' });
  });
  await t.rejects(openCheckout(db, request(u)), refusal('checkout-in-progress'), 'an approved one is being captured');

  await db.updateTable('subscriptions').set({ status: 'active' }).where('id', '=', second.subscriptionId).execute();
  await t.rejects(openCheckout(db, request(u)), refusal('already-subscribed'));
  t.equal((await subsOf(u)).length, 2, 'nothing written by a refusal');
});

t.test('coupons: a discount, a free first period, and one refused with nothing written', async (t) => {
  const u = user();
  t.same(await openCheckout(db, request(u, { couponCode: 'HALF' })), { due: 'paid', amount: 250 });
  const v = user();
  const free = request(v, { couponCode: 'FREE' });
  t.same(await openCheckout(db, free), { due: 'free', amount: 0 });
  t.match(await paysOf(v), [{ id: free.paymentId, amount: 0, status: 'created' }]);

  const w = user();
  await t.rejects(openCheckout(db, request(w, { couponCode: 'NOPE' })), refusal('coupon-not-applicable'));
  t.equal((await subsOf(w)).length, 0, 'the subscription rolled back with the coupon');
});

t.test('a trial once per user and role: nothing charged now; the second time a paid checkout', async (t) => {
  const u = user();
  const trial = request(u, { plan: plans.tr });
  t.same(await openCheckout(db, trial), { due: 'trial', amount: 0 });
  t.match(await subsOf(u), [{ trial_period: 'P7D' }]);
  t.equal((await paysOf(u)).length, 0, 'no payment until the trial ends');
  await vaultCheckoutOpened(db, {
    subscriptionId: trial.subscriptionId,
    userId: u,
    setupTokenId: 'TOKEN-1',
    approvalUrl: 'https://pp/vault',
  });
  t.match(await subsOf(u), [{ approval_url: 'https://pp/vault' }]);
  t.match(await db.selectFrom('payment_method_requests').selectAll().where('user_id', '=', u).execute(), [
    { setup_token_id: 'TOKEN-1', status: 'pending', subscription_id: trial.subscriptionId },
  ]);
  // The trial was given (its start recorded when the wallet was saved), and it ended.
  await db
    .updateTable('subscriptions')
    .set({ status: 'expired', trial_start: new Date(Date.now() - 7 * 86_400_000), trial_end: new Date() })
    .where('id', '=', trial.subscriptionId)
    .execute();
  t.same(await openCheckout(db, request(u, { plan: plans.tr })), { due: 'paid', amount: 500 }, 'no second trial');
});

t.test('PayPal refused the order or the setup token: the checkout ends, its payment failed', async (t) => {
  const u = user();
  const c = request(u);
  await openCheckout(db, c);
  await checkoutRefusedAtProvider(db, { subscriptionId: c.subscriptionId, paymentId: c.paymentId });
  t.match(await paysOf(u), [{ status: 'failed', failure_reason: 'provider_error' }]);
  t.match(await subsOf(u), [{ status: 'cancelled', approval_url: null }]);
  await checkoutRefusedAtProvider(db, { subscriptionId: c.subscriptionId, paymentId: c.paymentId });
  t.match(await subsOf(u), [{ status: 'cancelled' }], 'twice: nothing more');

  const v = user();
  const trial = request(v, { plan: plans.tr });
  await openCheckout(db, trial);
  await checkoutRefusedAtProvider(db, { subscriptionId: trial.subscriptionId, paymentId: null });
  t.match(await subsOf(v), [{ status: 'cancelled' }], 'a trial refused at PayPal ends too');
});

t.test('the buyer gave up at PayPal: a pending order ends with its checkout; an approved one does not', async (t) => {
  const u = user();
  const c = request(u);
  await openCheckout(db, c);
  const o = {
    paymentId: c.paymentId,
    subscriptionId: c.subscriptionId,
    orderId: `ORD-${u}`,
    approvalUrl: 'https://pp',
  };
  await checkoutOrderCreated(db, o);
  t.equal(await buyerReturned(db, 'ORD-unknown'), false, 'back with an order of nobody: nothing asked');
  t.equal(await buyerReturned(db, o.orderId), true, 'back with ours: the payment-worker asked to look it up');
  const checks = await db
    .selectFrom('outbox')
    .select('envelope')
    .where('type', '=', 'payment.check.requested')
    .execute();
  t.equal(checks.filter((r) => (r.envelope as { data: { orderId: string } }).data.orderId === o.orderId).length, 1);
  t.equal(await checkoutCancelledByBuyer(db, 'ORD-unknown'), false, 'an order of nobody');
  t.equal(await checkoutCancelledByBuyer(db, o.orderId), true);
  t.match(await paysOf(u), [{ status: 'cancelled' }]);
  t.match(await subsOf(u), [{ status: 'cancelled', approval_url: null }]);
  t.equal(await checkoutCancelledByBuyer(db, o.orderId), false, 'twice: nothing');

  const v = user();
  const approved = request(v);
  await openCheckout(db, approved);
  await checkoutOrderCreated(db, {
    ...o,
    paymentId: approved.paymentId,
    subscriptionId: approved.subscriptionId,
    orderId: `ORD-${v}`,
  });
  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: approved.paymentId }))!;
    await payments.transition(trx, p, { type: 'approved' });
  });
  t.equal(await checkoutCancelledByBuyer(db, `ORD-${v}`), false, 'being captured: left alone');
  t.match(await subsOf(v), [{ status: 'pending' }]);
});

t.test('a checkout whose order never reached PayPal, past its time: it ends', async (t) => {
  const u = user();
  const c = request(u);
  await openCheckout(db, c);
  const expire = () =>
    db.transaction().execute(async (trx) => {
      const p = (await payments.lock(trx, { id: c.paymentId }))!;
      return unsentPaymentExpired(trx, p, new Date());
    });
  t.equal(await expire(), true);
  t.match(await paysOf(u), [{ status: 'cancelled', failure_reason: 'checkout_expired' }]);
  t.match(await subsOf(u), [{ status: 'cancelled' }]);
  t.equal(await expire(), false, 'twice: nothing');
});

t.test(
  'checkouts of one user released at once, common and long-way mixed: none fails, one pending subscription is left (docs/api.md, how step 2 is written)',
  async (t) => {
    // The common checkout takes no lock: the unique index on pending subscriptions keeps it exact.
    for (let round = 0; round < 8; round++) {
      const u = user();
      const requests = Array.from({ length: 12 }, (_, i) =>
        // A role the user holds sends a checkout the long way (under the user's lock).
        request(u, i % 3 === 2 ? { roles: ['r'] } : {}),
      );
      const settled = await Promise.allSettled(requests.map((r) => openCheckout(db, r)));
      const failed = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
      t.same(
        failed.map((f) => String((f.reason as Error).message)),
        [],
        `round ${round}: no checkout failed`,
      );
      const subs = await subsOf(u);
      t.equal(subs.length, 12, `round ${round}: each checkout wrote its subscription`);
      t.equal(subs.filter((s) => s.status === 'pending').length, 1, `round ${round}: one left pending`);
      t.equal(subs.filter((s) => s.status === 'cancelled').length, 11, `round ${round}: the others replaced`);
    }
  },
);

t.test(
  'a coupon or a trial checkout (the long way) released at once with common checkouts of the same user and role: one pending, its coupon alone redeemed',
  async (t) => {
    for (let round = 0; round < 8; round++) {
      const u = user();
      // The coupon's checkout and the trial's go the long way (the user's lock, a transaction); the
      // common ones are one statement each. One contender of each kind per role.
      const coupon = request(u, { couponCode: 'HALF' });
      const trial = request(u, { plan: plans.tr });
      const requests = [
        coupon,
        trial,
        ...Array.from({ length: 5 }, () => request(u)),
        ...Array.from({ length: 5 }, () => request(u, { plan: plans.tp })),
      ];
      const settled = await Promise.allSettled(requests.map((r) => openCheckout(db, r)));
      const failed = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
      t.same(
        failed.map((f) => String((f.reason as Error).message)),
        [],
        `round ${round}: no checkout failed`,
      );
      const subs = await subsOf(u);
      t.equal(subs.length, 12, `round ${round}: each checkout wrote its subscription`);
      for (const role of ['r', 'tr']) {
        const pending = subs.filter((s) => s.role === role && s.status === 'pending');
        t.equal(pending.length, 1, `round ${round}: one pending for role ${role}`);
      }
      const live = new Set(subs.filter((s) => s.status === 'pending').map((s) => s.id));
      const redemptions = await db
        .selectFrom('coupon_redemptions')
        .selectAll()
        .where('user_id', '=', u)
        .where('status', '=', 'active')
        .execute();
      t.ok(
        redemptions.every((r) => r.subscription_id === coupon.subscriptionId && live.has(r.subscription_id)),
        `round ${round}: a coupon is redeemed only by a checkout still pending`,
      );
      t.equal(
        redemptions.length,
        live.has(coupon.subscriptionId) ? 1 : 0,
        `round ${round}: the coupon's checkout ${live.has(coupon.subscriptionId) ? 'left pending holds' : 'replaced gave back'} its redemption`,
      );
      const pays = await paysOf(u);
      const pendingPay = pays.find((p) => live.has(p.subscription_id) && p.amount === 250);
      t.equal(
        Boolean(pendingPay),
        live.has(coupon.subscriptionId),
        `round ${round}: the discount only on the coupon's payment`,
      );
    }
  },
);
