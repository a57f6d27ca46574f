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

// docs/disputes.md: PayPal disputes through the real processes, the stand-in speaking Disputes v1.
const admin = async (method: string, path: string, body?: unknown) => {
  const token = await stack.tokenFor('ops-disputes', ['admin']);
  const res = await fetch(`${stack.urls['admin-portal']}/admin/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const disputeOf = async (paymentId: string) => {
  const d = await stack.tdb.db
    .selectFrom('disputes')
    .selectAll()
    .where('payment_id', '=', paymentId)
    .executeTakeFirst();
  return d;
};
const actionSent = (id: string) =>
  waitFor(
    async () =>
      (await stack.tdb.db.selectFrom('dispute_actions').select('status').where('id', '=', id).executeTakeFirstOrThrow())
        .status === 'sent',
    { what: 'the action sent to PayPal', timeoutMs: 20_000 },
  );

t.test(
  'a dispute lost after evidence: shown to operators, operator refunds refused meanwhile, then a chargeback',
  async (t) => {
    const s = await activate('user-dispute-lost');
    const opened = (await stack.paypal(`/_control/captures/${s.captureId}/dispute`, {})) as { dispute_id: string };
    await waitFor(async () => Boolean(await disputeOf(s.paymentId)), {
      what: 'the dispute recorded',
      timeoutMs: 20_000,
    });
    const open = (await admin('GET', '/disputes?open=true')).body['items'] as Record<string, any>[];
    const d = open.find((x) => x['providerDisputeId'] === opened.dispute_id)!;
    t.match(d, { paymentId: s.paymentId, userId: 'user-dispute-lost', amount: 999, status: 'OPEN', result: 'open' });
    t.match((await admin('GET', `/payments/${s.paymentId}`)).body['disputes'], [{ id: d['id'], status: 'OPEN' }]);

    const refund = await admin('POST', `/payments/${s.paymentId}/refund`, { reason: 'goodwill' });
    t.equal(refund.status, 409, 'an operator refund of a disputed payment is refused');
    t.match(refund.body, { type: '/problems/payment-disputed', detail: new RegExp(opened.dispute_id) });

    // PayPal takes its time with the evidence, so the second answer surely comes while the first is in flight.
    await stack.paypal('/_control/behaviour', { delays: [{ match: 'provide-evidence', ms: 1500 }] });
    const evidence = await admin('POST', `/disputes/${d['id']}/evidence`, { note: 'Signed in 14 times this month.' });
    t.equal(evidence.status, 202);
    t.equal((await admin('POST', `/disputes/${d['id']}/accept`, { note: 'x' })).status, 409, 'one answer at a time');
    await actionSent(evidence.body['id']);
    await stack.paypal('/_control/behaviour', { delays: [] });
    const sent = (
      (await stack.paypal('/_control/calls')) as { path: string; requestId: string; body: unknown }[]
    ).filter((c) => c.path === `/v1/customer/disputes/${opened.dispute_id}/provide-evidence`);
    t.match(sent, [
      {
        requestId: `${evidence.body['id']}:dispute`,
        body: { evidences: [{ evidence_type: 'OTHER', notes: 'Signed in 14 times this month.' }] },
      },
    ]);
    await waitFor(async () => (await disputeOf(s.paymentId))?.status === 'UNDER_REVIEW', { what: 'UNDER_REVIEW' });

    // PayPal's agents decide for the buyer (the sandbox's adjudicate).
    const token = await paypalToken();
    const settled = await fetch(`${stack.urls.paypal}/v1/customer/disputes/${opened.dispute_id}/adjudicate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"adjudication_outcome":"BUYER_FAVOR"}',
    });
    t.equal(settled.status, 200);
    await waitFor(async () => (await payment(s.paymentId)).status === 'reversed', {
      what: 'the lost dispute as a chargeback',
      timeoutMs: 20_000,
    });
    t.match(await disputeOf(s.paymentId), { result: 'lost', outcome: 'RESOLVED_BUYER_FAVOUR' });
    t.equal((await sub(s.subscriptionId)).status, 'cancelled', 'no renewal kept');
    await waitFor(async () => !(await rolesOf('user-dispute-lost')).includes('premium'), { what: 'the role revoked' });
    t.equal((await admin('POST', `/disputes/${d['id']}/accept`, { note: 'late' })).status, 409, 'resolved');
    t.equal(
      (await stack.tdb.db.selectFrom('refunds').selectAll().where('payment_id', '=', s.paymentId).execute()).length,
      0,
      'we refund nothing ourselves',
    );
  },
);

t.test(
  'a claim accepted by the operator: PayPal refunds the buyer, the subscription ends, a held refund fails',
  async (t) => {
    const s = await activate('user-dispute-accept');
    const opened = (await stack.paypal(`/_control/captures/${s.captureId}/dispute`, { stage: 'CHARGEBACK' })) as {
      dispute_id: string;
    };
    await waitFor(async () => Boolean(await disputeOf(s.paymentId)), {
      what: 'the dispute recorded',
      timeoutMs: 20_000,
    });
    // The buyer cancels with a refund meanwhile: the refund is held, PayPal is not asked.
    const token = await stack.tokenFor('user-dispute-accept');
    const cancel = await fetch(`${stack.urls['billing-api']}/v1/subscriptions/${s.subscriptionId}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"mode":"immediately"}',
    });
    t.equal(cancel.status, 200);
    const refunds = () =>
      stack.tdb.db.selectFrom('refunds').selectAll().where('payment_id', '=', s.paymentId).execute();
    await waitFor(async () => (await refunds()).length === 1, { what: 'the cancel refund recorded' });
    await stack.quiet();
    t.match(await refunds(), [{ status: 'requested' }], 'held');
    const refundCalls = ((await stack.paypal('/_control/calls')) as { path: string }[]).filter(
      (c) => c.path === `/v2/payments/captures/${s.captureId}/refund`,
    );
    t.equal(refundCalls.length, 0, 'PayPal was not asked to refund a disputed capture');

    const d = (await disputeOf(s.paymentId))!;
    const accept = await admin('POST', `/disputes/${d.id}/accept`, { note: 'Refund the buyer.' });
    t.equal(accept.status, 202);
    await actionSent(accept.body['id']);
    await waitFor(async () => (await disputeOf(s.paymentId))?.result === 'lost', { what: 'the claim accepted' });
    await waitFor(async () => (await refunds())[0]?.status === 'failed', { what: 'the held refund failed' });
    t.match(await refunds(), [{ status: 'failed', failure_reason: 'the dispute returned the money' }]);
    t.match(await payment(s.paymentId), { status: 'reversed' });
    const captures = (await stack.paypal('/_control/captures')) as { id: string; status: string }[];
    t.match(
      captures.find((c) => c.id === s.captureId),
      { status: 'REFUNDED' },
      'the buyer got the money once, through the dispute',
    );
    void opened;
  },
);

t.test('a dispute won: the refund held meanwhile goes to PayPal', async (t) => {
  const s = await activate('user-dispute-won');
  const opened = (await stack.paypal(`/_control/captures/${s.captureId}/dispute`, {})) as { dispute_id: string };
  await waitFor(async () => Boolean(await disputeOf(s.paymentId)), { what: 'the dispute recorded', timeoutMs: 20_000 });
  const token = await stack.tokenFor('user-dispute-won');
  await fetch(`${stack.urls['billing-api']}/v1/subscriptions/${s.subscriptionId}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{"mode":"immediately"}',
  });
  const refunds = () => stack.tdb.db.selectFrom('refunds').selectAll().where('payment_id', '=', s.paymentId).execute();
  await waitFor(async () => (await refunds()).length === 1, { what: 'the cancel refund recorded' });
  const d = (await disputeOf(s.paymentId))!;
  const evidence = await admin('POST', `/disputes/${d.id}/evidence`, { note: 'Delivered.' });
  await actionSent(evidence.body['id']);
  const settled = await fetch(`${stack.urls.paypal}/v1/customer/disputes/${opened.dispute_id}/adjudicate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await paypalToken()}`, 'content-type': 'application/json' },
    body: '{"adjudication_outcome":"SELLER_FAVOR"}',
  });
  t.equal(settled.status, 200);
  await waitFor(async () => (await refunds())[0]?.status === 'completed', {
    what: 'the held refund sent once the dispute is won',
    timeoutMs: 20_000,
  });
  t.match(await disputeOf(s.paymentId), { result: 'won', outcome: 'RESOLVED_SELLER_FAVOUR' });
  t.match((await payment(s.paymentId)).status, /refunded$/);
});

async function paypalToken(): Promise<string> {
  const auth = await fetch(`${stack.urls.paypal}/v1/oauth2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('e2e-client:e2e-client-secret-91aa').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  return ((await auth.json()) as { access_token: string }).access_token;
}
