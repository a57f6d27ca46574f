import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { startStack } from '../src/stack.js';

// docs/api.md, coupons at checkout: a coupon that makes periods free, through the real processes on PT15S periods:
// 100% off the first two periods. The checkout saves the buyer's wallet (PayPal's vault setup
// token) and charges nothing; each free period is recorded as paid, for 0, without a PayPal
// charge, with its receipt; the third period is charged its full price through the saved wallet.
const stack = await startStack(
  { SCHEDULER_INTERVAL_MS: '500', RENEWAL_LEAD_MS: '2000' },
  {
    plans: [
      {
        id: 'quick',
        name: 'Quick',
        description: '',
        amount: 500,
        currency: 'USD',
        period: 'PT15S',
        role: 'quick-role',
        active: true,
      },
    ],
  },
);
t.teardown(() => stack.stop());
const db = stack.tdb.db;
const API = stack.urls['billing-api'];

t.test('two free periods, then the full price through the saved wallet', async (t) => {
  const adminToken = await stack.tokenFor('ops-free', ['admin']);
  const created = await fetch(`${stack.urls['admin-portal']}/admin/api/v1/coupons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'FREE2', percentOff: 100, durationPeriods: 2, maxRedemptions: null, expiresAt: null }),
  });
  t.equal(created.status, 201);

  const token = await stack.tokenFor('user-free');
  const res = await fetch(`${API}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId: 'quick', couponCode: 'FREE2' }),
  });
  t.equal(res.status, 201);
  const body = (await res.json()) as { subscriptionId: string; paymentId: string; approvalUrl: string };
  t.match(body, { paymentId: /^[0-9a-f-]{36}$/, approvalUrl: /approval_session_id=/ });

  // The buyer saves the wallet at PayPal and comes back.
  const sessionId = new URL(body.approvalUrl).searchParams.get('approval_session_id')!;
  const page = await fetch(`${stack.urls.paypal}/agreements/approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `approval_session_id=${sessionId}`,
    redirect: 'manual',
  });
  const back = await fetch(page.headers.get('location')!, { redirect: 'manual' });
  t.match(back.headers.get('location'), /checkout=success/);

  const active = await waitFor(
    async () => {
      const s = await db
        .selectFrom('subscriptions')
        .selectAll()
        .where('id', '=', body.subscriptionId)
        .executeTakeFirst();
      return s?.status === 'active' ? s : null;
    },
    { what: 'active without a charge', timeoutMs: 20_000 },
  );
  t.ok(active.vault_id, 'the wallet is saved for later periods');
  await waitFor(
    async () => (((await stack.auth('/_control/users/user-free')).roles ?? []) as string[]).includes('quick-role'),
    { what: 'the role granted' },
  );
  const first = await db.selectFrom('payments').selectAll().where('id', '=', body.paymentId).executeTakeFirstOrThrow();
  t.match(first, {
    status: 'completed',
    amount: 0,
    kind: 'initial',
    provider_order_id: null,
    provider_capture_id: null,
  });
  const receipt = await waitFor(
    () => db.selectFrom('receipts').selectAll().where('payment_id', '=', first.id).executeTakeFirst(),
    { what: 'the receipt of the free period' },
  );
  t.equal(receipt.amount, 0);
  t.match(receipt.description, /coupon FREE2: 5\.00 USD off 5\.00/);

  // Period 1 is free too; period 2 is charged 5.00 through the saved wallet, once.
  const charged = await waitFor(
    async () => {
      const ps = await db
        .selectFrom('payments')
        .selectAll()
        .where('subscription_id', '=', body.subscriptionId)
        .where('status', '=', 'completed')
        .orderBy('period_index')
        .execute();
      return ps.length >= 3 ? ps : null;
    },
    { what: 'three periods paid', timeoutMs: 45_000 },
  );
  t.same(
    charged.map((p) => [p.period_index, p.kind, p.amount]),
    [
      [0, 'initial', 0],
      [1, 'renewal', 0],
      [2, 'renewal', 500],
    ],
  );
  t.equal(charged[1]!.provider_order_id, null, 'the free renewal never went to PayPal');
  await stack.quiet();
  const orders = ((await stack.paypal('/_control/calls')) as any[]).filter(
    (c) => c.path === '/v2/checkout/orders' && c.method === 'POST',
  );
  t.equal(orders.length, 1, 'one order at PayPal in all: the first full-price period');
  t.same(orders[0].body.purchase_units[0].amount, { currency_code: 'USD', value: '5.00' });
  t.equal(orders[0].body.payment_source.paypal.vault_id, active.vault_id);
  const receipts = await db
    .selectFrom('receipts')
    .select(['amount'])
    .where(
      'payment_id',
      'in',
      charged.map((p) => p.id),
    )
    .execute();
  t.same(receipts.map((r) => Number(r.amount)).sort(), [0, 0, 500], 'a receipt for every period');
  // Stop renewals before the invariants are read.
  await fetch(`${API}/v1/subscriptions/${body.subscriptionId}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'at_period_end' }),
  });
  await stack.quiet();
  t.same(await brokenInvariants(stack), []);
});
