import t from 'tap';
import { waitFor } from '@billing/testing';
import { startStack } from '../src/stack.js';

// docs/webhooks.md: a chargeback, and a full refund made at PayPal outside the system.
const stack = await startStack();
t.teardown(() => stack.stop());
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];

async function activate(userId: string) {
  const token = await stack.tokenFor(userId);
  const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{"planId":"pro-monthly"}',
  });
  const body = (await res.json()) as { subscriptionId: string; paymentId: string; approvalUrl: string };
  await stack.paypal(`/_control/orders/${new URL(body.approvalUrl).searchParams.get('token')}/approve`, {});
  await waitFor(
    async () => (await sub(body.subscriptionId)).status === 'active' && (await rolesOf(userId)).includes('premium'),
    { what: `${userId} active`, timeoutMs: 20_000 },
  );
  const p = await stack.tdb.db
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', body.paymentId)
    .executeTakeFirstOrThrow();
  return { ...body, captureId: p.provider_capture_id! };
}
const sub = (id: string) =>
  stack.tdb.db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const payment = (id: string) =>
  stack.tdb.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const cancelledNote = async (subscriptionId: string) =>
  (await stack.notifications()).filter(
    (n) => n.type === 'subscription.cancelled' && n.data['subscriptionId'] === subscriptionId,
  );

t.test(
  'a chargeback on the payment for the period in effect: reversed, subscription cancelled at once, role revoked',
  async (t) => {
    const s = await activate('user-chargeback');
    await stack.paypal(`/_control/captures/${s.captureId}/reverse`, {});
    await waitFor(async () => (await payment(s.paymentId)).status === 'reversed', {
      what: 'the reversal',
      timeoutMs: 20_000,
    });
    t.equal((await sub(s.subscriptionId)).status, 'cancelled');
    await waitFor(async () => !(await rolesOf('user-chargeback')).includes('premium'), { what: 'the role revoked' });
    t.match((await cancelledNote(s.subscriptionId))[0]?.data, { mode: 'immediately', refundAmount: 0 });
    t.equal(
      (await stack.tdb.db.selectFrom('refunds').selectAll().where('payment_id', '=', s.paymentId).execute()).length,
      0,
      'we refund nothing on a chargeback',
    );
  },
);

t.test(
  'a full refund made at PayPal outside the system: refunded, subscription cancelled, role revoked, nothing more refunded by us',
  async (t) => {
    const s = await activate('user-external');
    const auth = await fetch(`${stack.urls.paypal}/v1/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('e2e-client:e2e-client-secret-91aa').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    const { access_token } = (await auth.json()) as { access_token: string };
    const refund = await fetch(`${stack.urls.paypal}/v2/payments/captures/${s.captureId}/refund`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    t.equal(refund.status, 201, 'refunded in the PayPal dashboard, as it were');
    await waitFor(async () => (await payment(s.paymentId)).status === 'refunded', {
      what: 'the external refund recorded',
      timeoutMs: 20_000,
    });
    const p = await payment(s.paymentId);
    t.equal(p.refunded_amount, p.amount);
    const rows = await stack.tdb.db.selectFrom('refunds').selectAll().where('payment_id', '=', s.paymentId).execute();
    t.same(
      rows.map((r) => [r.origin, r.status, r.amount]),
      [['external', 'completed', p.amount]],
    );
    t.equal((await sub(s.subscriptionId)).status, 'cancelled');
    await waitFor(async () => !(await rolesOf('user-external')).includes('premium'), { what: 'the role revoked' });
    const refunded = (await stack.notifications()).filter(
      (n) => n.type === 'payment.refunded' && n.data['paymentId'] === s.paymentId,
    );
    t.equal(refunded.length, 1, 'payment.refunded once');
    t.equal(refunded[0]!.data['refundedAmount'], p.amount);
  },
);

t.test('a role the user held before buying is not revoked when the subscription ends', async (t) => {
  t.ok((await rolesOf('user-carol')).includes('premium'), 'carol holds premium from outside the system');
  const s = await activate('user-carol');
  const token = await stack.tokenFor('user-carol', ['user', 'premium']);
  t.equal((await sub(s.subscriptionId)).status, 'active', 'the subscription was active');
  await waitFor(
    async () =>
      (
        await stack.tdb.db
          .selectFrom('outbox')
          .select('id')
          .where('type', '=', 'role.change.requested')
          .where('published_at', 'is', null)
          .execute()
      ).length === 0,
    { what: 'the grant handled' },
  );
  const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions/${s.subscriptionId}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{"mode":"immediately"}',
  });
  t.equal(res.status, 200);
  await waitFor(
    async () =>
      (
        await stack.tdb.db
          .selectFrom('processed_messages')
          .select('message_id')
          .where('consumer', '=', 'role-worker')
          .execute()
      ).length > 0 &&
      (
        await stack.tdb.db
          .selectFrom('outbox')
          .select('id')
          .where('type', '=', 'role.change.requested')
          .where('published_at', 'is', null)
          .execute()
      ).length === 0,
    { what: 'the role change handled' },
  );
  await stack.quiet();
  t.ok((await rolesOf('user-carol')).includes('premium'), 'premium stays');
  t.equal(
    (await stack.notifications()).filter((n) => n.type === 'role.revoked' && n.data['userId'] === 'user-carol').length,
    0,
    'no role.revoked',
  );
});
