import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { startStack } from '../src/stack.js';

// docs/api.md, free trials, through the real processes: a PT10S trial before PT30S periods.
// Checkout saves the buyer's wallet through PayPal's vault setup-token flow without a charge; the
// subscription is trialing with its role granted; subscription.trial_will_end comes at half the
// trial (it is shorter than 6 days); at the trial's end the first period is charged through the
// vault like a renewal, with dunning. One trial per user and role.
const TRIAL_MS = 10_000;
const stack = await startStack(
  {
    SCHEDULER_INTERVAL_MS: '500',
    RENEWAL_LEAD_MS: '2000',
    DUNNING_RETRY_MS: '4000,8000',
    RECONCILE_AFTER_MS: '3000',
    CHECKOUT_TTL_MS: '15000',
  },
  {
    plans: [
      {
        id: 'trial-short',
        name: 'Trial then short',
        description: '',
        amount: 400,
        currency: 'USD',
        period: 'PT30S',
        role: 'trial-role',
        active: true,
        trialPeriod: 'PT10S',
      },
    ],
  },
);
t.teardown(() => stack.stop());
const db = stack.tdb.db;
const API = stack.urls['billing-api'];
const subRow = (id: string) =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const ordersOf = async (vaultId: string) =>
  ((await stack.paypal('/_control/calls')) as any[]).filter(
    (c) => c.path === '/v2/checkout/orders' && c.body?.payment_source?.paypal?.vault_id === vaultId,
  );
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];
/** Notifications of one subscription, with the time each was written (the outbox keeps it). */
const sent = async (type: string, subscriptionId: string) =>
  (await db.selectFrom('outbox').select(['envelope', 'created_at']).where('type', '=', type).orderBy('seq').execute())
    .map((r) => ({ at: r.created_at, data: (r.envelope as { data: Record<string, unknown> }).data }))
    .filter((n) => n.data['subscriptionId'] === subscriptionId);

async function checkout(userId: string) {
  const token = await stack.tokenFor(userId);
  const res = await fetch(`${API}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId: 'trial-short' }),
  });
  return { token, status: res.status, body: (await res.json()) as Record<string, any> };
}

/** The buyer approves saving the wallet on PayPal's page and comes back to billing-api. */
async function approveAtPayPal(approvalUrl: string, button: 'approve' | 'cancel' = 'approve') {
  const sessionId = new URL(approvalUrl).searchParams.get('approval_session_id')!;
  const page = await fetch(`${stack.urls.paypal}/agreements/${button}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `approval_session_id=${sessionId}`,
    redirect: 'manual',
  });
  return fetch(page.headers.get('location')!, { redirect: 'manual' });
}

async function startTrial(userId: string) {
  const c = await checkout(userId);
  const back = await approveAtPayPal(c.body['approvalUrl']);
  const row = await waitFor(
    async () => {
      const s = await subRow(c.body['subscriptionId']);
      return s.status === 'trialing' ? s : null;
    },
    { what: `${userId} trialing`, timeoutMs: 20_000 },
  );
  return { ...c, back, row };
}

t.test('a trial that converts: no charge, the role at once, told before the end, charged at the end', async (t) => {
  const c = await checkout('user-trial-ok');
  t.equal(c.status, 201);
  t.match(c.body, { status: 'pending', paymentId: null, approvalUrl: /agreements\/approve\?approval_session_id=/ });
  const calls = (await stack.paypal('/_control/calls')) as any[];
  t.ok(
    calls.some((x) => x.path === '/v3/vault/setup-tokens' && x.method === 'POST'),
    'a setup token was created at PayPal',
  );
  t.notOk(
    calls.some((x) => x.path.startsWith('/v2/checkout/orders')),
    'no order at all (the first checkout of this file): nothing charged at checkout',
  );
  const back = await approveAtPayPal(c.body['approvalUrl']);
  t.equal(back.status, 303);
  t.match(back.headers.get('location'), /checkout=success/);
  const id = c.body['subscriptionId'] as string;
  const trialing = await waitFor(
    async () => {
      const s = await subRow(id);
      return s.status === 'trialing' ? s : null;
    },
    { what: 'trialing', timeoutMs: 20_000 },
  );
  t.ok(trialing.vault_id, 'the wallet is saved');
  t.equal(trialing.trial_end!.getTime() - trialing.trial_start!.getTime(), TRIAL_MS, 'the trial lasts PT10S');
  await waitFor(async () => (await rolesOf('user-trial-ok')).includes('trial-role'), {
    what: 'the role granted during the trial',
  });
  const view = (await (
    await fetch(`${API}/v1/subscriptions/${id}`, { headers: { authorization: `Bearer ${c.token}` } })
  ).json()) as Record<string, unknown>;
  t.match(view, {
    status: 'trialing',
    trialStart: trialing.trial_start!.toISOString(),
    trialEnd: trialing.trial_end!.toISOString(),
    currentPeriodStart: trialing.trial_start!.toISOString(),
    currentPeriodEnd: trialing.trial_end!.toISOString(),
  });
  const [started] = await sent('subscription.trial_started', id);
  t.match(started?.data, { userId: 'user-trial-ok', role: 'trial-role', amount: 400, currency: 'USD' });
  t.equal((await ordersOf(trialing.vault_id!)).length, 0, 'the wallet is not charged during the trial');

  // Half the trial: subscription.trial_will_end, once.
  const [willEnd] = await waitFor(
    async () => {
      const n = await sent('subscription.trial_will_end', id);
      return n.length ? n : null;
    },
    { what: 'subscription.trial_will_end', timeoutMs: 15_000 },
  );
  const half = trialing.trial_start!.getTime() + TRIAL_MS / 2;
  t.ok(willEnd!.at.getTime() >= half, 'not before half the trial');
  t.ok(willEnd!.at.getTime() < trialing.trial_end!.getTime(), 'before the trial ends');
  t.equal(willEnd!.data['trialEnd'], trialing.trial_end!.toISOString());

  // The end: the first period charged through the vault, once, for the plan's price.
  const active = await waitFor(
    async () => {
      const s = await subRow(id);
      return s.status === 'active' ? s : null;
    },
    { what: 'active after the first charge', timeoutMs: 20_000 },
  );
  const charges = await ordersOf(trialing.vault_id!);
  t.equal(charges.length, 1, 'charged once');
  t.same(charges[0].body.purchase_units[0].amount, { currency_code: 'USD', value: '4.00' });
  const [first] = await db.selectFrom('payments').selectAll().where('subscription_id', '=', id).execute();
  t.match(first, { kind: 'renewal', status: 'completed', amount: 400, period_index: 0 });
  t.ok(first!.created_at >= trialing.trial_end!, 'charged at the trial end, not before');
  t.equal(first!.period_start!.toISOString(), trialing.trial_end!.toISOString(), 'the first period starts at the end');
  t.equal(active.paid_through!.getTime(), trialing.trial_end!.getTime() + 30_000);
  const [activated] = await waitFor(async () => {
    const n = await sent('subscription.activated', id);
    return n.length ? n : null;
  });
  t.match(activated!.data, {
    amount: 400,
    currentPeriodStart: trialing.trial_end!.toISOString(),
  });
  t.equal((await sent('payment.completed', id)).length, 1, 'a receipt for the first charge');
  t.equal((await sent('subscription.trial_will_end', id)).length, 1, 'told once');
  t.ok((await rolesOf('user-trial-ok')).includes('trial-role'), 'the role kept across the conversion');

  // A second trial for the same role while this one lives: refused like any second subscription.
  const again = await checkout('user-trial-ok');
  t.equal(again.status, 409);
  t.match(again.body, { type: '/problems/already-subscribed' });
  // Stop renewals for the rest of the file.
  await fetch(`${API}/v1/subscriptions/${id}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'at_period_end' }),
  });
});

t.test('a trial whose first charge fails: past_due with the role kept, dunning, then expired', async (t) => {
  const { row } = await startTrial('user-trial-declined');
  const id = row.id;
  // The buyer's wallet declines every charge.
  await stack.paypal('/_control/behaviour', { declineVaults: { [row.vault_id!]: 100 } });
  const pastDue = await waitFor(
    async () => {
      const s = await subRow(id);
      return s.status === 'past_due' ? s : null;
    },
    { what: 'past_due at the trial end', timeoutMs: 20_000 },
  );
  t.ok(pastDue.next_retry_at, 'a retry is planned');
  t.ok((await rolesOf('user-trial-declined')).includes('trial-role'), 'the grant stays while past_due');
  const [failed] = await sent('subscription.renewal_failed', id);
  t.match(failed?.data, { reason: 'declined', amount: 400 });
  await waitFor(async () => (await subRow(id)).status === 'expired', {
    what: 'expired after the last retry',
    timeoutMs: 30_000,
  });
  await waitFor(async () => !(await rolesOf('user-trial-declined')).includes('trial-role'), {
    what: 'the role revoked',
  });
  t.equal((await ordersOf(row.vault_id!)).length, 3, 'the first charge and two retries, no more');
  const pays = await db.selectFrom('payments').selectAll().where('subscription_id', '=', id).execute();
  t.ok(
    pays.every((p) => p.status === 'failed' && p.period_index === 0),
    'each attempt failed, all for the first period',
  );
  t.equal((await sent('subscription.expired', id)).length, 1);

  // One trial per user and role: this buyer's next checkout is a normal paid one.
  const again = await checkout('user-trial-declined');
  t.equal(again.status, 201);
  t.match(again.body, { paymentId: /^[0-9a-f-]{36}$/, approvalUrl: /checkoutnow\?token=/ });
  const paid = await subRow(again.body['subscriptionId']);
  t.equal(paid.trial_period, null, 'no second trial');
});

t.test('a trial set to end at its end is never charged: expired then, the role gone', async (t) => {
  const { row, token } = await startTrial('user-trial-leaves');
  const res = await fetch(`${API}/v1/subscriptions/${row.id}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'at_period_end' }),
  });
  t.match(await res.json(), { status: 'trialing', cancelAtPeriodEnd: true, trialEnd: row.trial_end!.toISOString() });
  const [cancelled] = await sent('subscription.cancelled', row.id);
  t.match(cancelled?.data, { mode: 'at_period_end', endsAt: row.trial_end!.toISOString(), refundAmount: 0 });
  await waitFor(async () => (await subRow(row.id)).status === 'expired', {
    what: 'expired at the trial end',
    timeoutMs: 20_000,
  });
  await waitFor(async () => !(await rolesOf('user-trial-leaves')).includes('trial-role'), { what: 'role revoked' });
  await stack.quiet();
  t.equal((await ordersOf(row.vault_id!)).length, 0, 'never charged');
  t.equal((await sent('subscription.trial_will_end', row.id)).length, 0, 'not told it will convert');
});

t.test('operators set a plan trial; GET /v1/plans shows it; a malformed one is refused', async (t) => {
  const admin = await stack.tokenFor('ops-trials', ['admin']);
  const call = (method: string, path: string, body: unknown) =>
    fetch(`${stack.urls['admin-portal']}/admin/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const plan = {
    id: 'trial-monthly',
    name: 'Monthly with a trial',
    description: '',
    amount: 1200,
    currency: 'USD',
    period: 'P1M',
    role: 'trial-monthly-role',
    active: true,
    trialPeriod: 'P14D',
    reason: 'a trial offer',
  };
  t.equal((await call('POST', '/plans', plan)).status, 201);
  t.equal((await call('POST', '/plans', { ...plan, id: 'bad-trial', trialPeriod: 'two weeks' })).status, 400);
  const patched = await call('PATCH', '/plans/trial-monthly', { trialPeriod: 'P7D', reason: 'shorter' });
  t.match(await patched.json(), { trialPeriod: 'P7D' });
  const plans = (await (await fetch(`${API}/v1/plans`)).json()) as { items: Record<string, unknown>[] };
  t.match(
    plans.items.find((p) => p['id'] === 'trial-monthly'),
    { trialPeriod: 'P7D' },
  );
  t.match(
    plans.items.find((p) => p['id'] === 'pro-monthly'),
    { trialPeriod: null },
  );
  const off = await call('PATCH', '/plans/trial-monthly', { trialPeriod: null, reason: 'no more trials' });
  t.match(await off.json(), { trialPeriod: null });
});

t.test('a trial checkout given up at PayPal ends; the buyer may still have a trial later', async (t) => {
  const c = await checkout('user-trial-later');
  const back = await approveAtPayPal(c.body['approvalUrl'], 'cancel');
  t.equal(back.status, 303);
  t.match(back.headers.get('location'), /checkout=cancelled/);
  t.match(await subRow(c.body['subscriptionId']), { status: 'cancelled', trial_start: null });
  const { row } = await startTrial('user-trial-later');
  t.ok(row.trial_start, 'a trial, since none was had');
});

t.test(
  'one trial, however many checkouts and approvals race: ten at once, every approval at once, three rounds',
  async (t) => {
    for (let round = 0; round < 3; round++) {
      const userId = `user-trial-race-${round}`;
      const token = await stack.tokenFor(userId);
      const go = async () => {
        const res = await fetch(`${API}/v1/subscriptions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ planId: 'trial-short' }),
        });
        return (await res.json()) as { approvalUrl?: string };
      };
      const answers = await Promise.all(Array.from({ length: 10 }, go));
      const urls = answers.map((a) => a.approvalUrl).filter((u): u is string => Boolean(u));
      // Every checkout the buyer was given an approval link for is approved, and comes back, at once.
      await Promise.all(urls.map((u) => approveAtPayPal(u)));
      await stack.quiet({ stableMs: 1500 });
      const subs = await db.selectFrom('subscriptions').selectAll().where('user_id', '=', userId).execute();
      const started = subs.filter((s) => s.trial_start);
      t.equal(started.length, 1, `round ${round}: one trial started`);
      t.equal(subs.filter((s) => s.status === 'trialing').length, 1, `round ${round}: one subscription trialing`);
      t.ok(
        subs.filter((s) => s.status !== 'trialing').every((s) => s.status === 'cancelled'),
        `round ${round}: the others cancelled`,
      );
      const notes = (
        await db.selectFrom('outbox').select('envelope').where('type', '=', 'subscription.trial_started').execute()
      )
        .map((r) => (r.envelope as { data: { userId: string } }).data)
        .filter((d) => d.userId === userId);
      t.equal(notes.length, 1, `round ${round}: told once`);
      const grants = await db
        .selectFrom('role_grants')
        .select('id')
        .where('user_id', '=', userId)
        .where('ended_at', 'is', null)
        .execute();
      t.equal(grants.length, 1, `round ${round}: one live grant`);
    }
  },
);

t.test('lost callbacks: an approval nobody came back from starts the trial; an unapproved one expires', async (t) => {
  const approved = await checkout('user-trial-lost-return');
  const tokenId = new URL(approved.body['approvalUrl']).searchParams.get('approval_session_id')!;
  // The buyer approves at PayPal but the return to billing-api never happens.
  await stack.paypal(`/_control/setup-tokens/${tokenId}/approve`, {});
  const abandoned = await checkout('user-trial-abandoned');
  await waitFor(async () => (await subRow(approved.body['subscriptionId'])).status === 'trialing', {
    what: 'the reconciliation started the trial',
    timeoutMs: 20_000,
  });
  await waitFor(async () => (await rolesOf('user-trial-lost-return')).includes('trial-role'), {
    what: 'its role granted',
  });
  await waitFor(async () => (await subRow(abandoned.body['subscriptionId'])).status === 'cancelled', {
    what: 'the unapproved trial checkout cancelled after CHECKOUT_TTL_MS',
    timeoutMs: 30_000,
  });
  t.equal((await subRow(abandoned.body['subscriptionId'])).trial_start, null);
  await stack.quiet();
  t.same(await brokenInvariants(stack), []);
});
