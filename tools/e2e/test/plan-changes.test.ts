import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { startStack } from '../src/stack.js';

// docs/api.md, plan changes, through the real processes: the charge at the PayPal stand-in
// checked to the cent against the formula, the roles at the Auth stand-in, the notifications.
const plan = (id: string, amount: number, period: string, role: string, currency = 'USD') => ({
  id,
  name: id,
  description: id,
  amount,
  currency,
  period,
  role,
  active: true,
});
const stack = await startStack(
  { SCHEDULER_INTERVAL_MS: '500', RENEWAL_LEAD_MS: '2000' },
  {
    plans: [
      plan('plus-monthly', 2999, 'P1M', 'premium-plus'),
      plan('pro-yearly', 9990, 'P1Y', 'premium'),
      plan('lite-monthly', 499, 'P1M', 'lite'),
      plan('fast-big', 600, 'PT30S', 'fast-big'),
      plan('fast-small', 300, 'PT30S', 'fast-small'),
    ],
  },
);
t.teardown(() => stack.stop());
const db = stack.tdb.db;

const call = async (method: string, path: string, token: string, body?: unknown) => {
  const res = await fetch(`${stack.urls['billing-api']}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
  });
  return { status: res.status, body: (await res.json()) as any };
};
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];
const subRow = (id: string) =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const note = async (type: string, subscriptionId: string) =>
  (await stack.notifications()).filter((n) => n.type === type && n.data['subscriptionId'] === subscriptionId);
/** The vault charges PayPal received for a payment of ours (custom_id). */
const chargesOf = async (paymentId: string) =>
  ((await stack.paypal('/_control/calls')) as any[]).filter(
    (c) =>
      c.path === '/v2/checkout/orders' &&
      c.body?.payment_source?.paypal?.vault_id &&
      c.body.purchase_units[0].custom_id === paymentId,
  );

async function subscribe(userId: string, planId: string, role: string) {
  const token = await stack.tokenFor(userId);
  const created = await call('POST', '/v1/subscriptions', token, { planId });
  t.equal(created.status, 201, `${userId} checks out ${planId}`);
  await stack.paypal(`/_control/orders/${new URL(created.body.approvalUrl).searchParams.get('token')}/approve`, {});
  await waitFor(
    async () => {
      const s = await subRow(created.body.subscriptionId);
      return s.status === 'active' && s.vault_id && (await rolesOf(userId)).includes(role);
    },
    { what: `${userId} active on ${planId}, wallet saved`, timeoutMs: 20_000 },
  );
  const initial = await db
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', created.body.paymentId)
    .executeTakeFirstOrThrow();
  return {
    token,
    id: created.body.subscriptionId as string,
    period: { start: initial.period_start!, end: initial.period_end! },
  };
}

/** floor(a × b / c) in BigInt. */
const muldiv = (a: number, b: number, c: number) => Number((BigInt(a) * BigInt(b)) / BigInt(c));

t.test('an upgrade: the prorated difference charged now, to the cent; plan, price and role switch', async (t) => {
  const alice = await subscribe('user-alice', 'pro-monthly', 'premium');
  const preview = await call('GET', `/v1/subscriptions/${alice.id}/change?planId=plus-monthly`, alice.token);
  t.equal(preview.status, 200);
  t.equal(preview.body.currency, 'USD');
  const changed = await call('POST', `/v1/subscriptions/${alice.id}/change`, alice.token, { planId: 'plus-monthly' });
  t.equal(changed.status, 202, 'accepted: charging');
  t.equal(changed.body.subscription.planId, 'pro-monthly', 'nothing switches before the charge completes');
  const [done] = await waitFor(
    async () => {
      const n = await note('subscription.plan_changed', alice.id);
      return n.length ? n : null;
    },
    { what: 'subscription.plan_changed', timeoutMs: 20_000 },
  );
  const effectiveAt = new Date(String(done!.data['effectiveAt']));
  const { start, end } = alice.period;
  const expected = muldiv(2999 - 999, end.getTime() - effectiveAt.getTime(), end.getTime() - start.getTime());
  t.equal(done!.data['amountCharged'], expected, `floor((2999 − 999) × r / T) = ${expected}`);
  t.ok(Math.abs(preview.body.amountDueNow - expected) <= 1, `the preview (${preview.body.amountDueNow}) said the same`);
  const payment = await db
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', changed.body.paymentId)
    .executeTakeFirstOrThrow();
  t.match(payment, { kind: 'upgrade', status: 'completed', amount: expected });
  const charges = await chargesOf(payment.id);
  t.equal(charges.length, 1, 'one vault charge at PayPal');
  t.same(charges[0].body.purchase_units[0].amount, { currency_code: 'USD', value: (expected / 100).toFixed(2) });
  t.equal(charges[0].requestId, `${payment.id}:charge`, 'with an idempotency key');
  const s = await subRow(alice.id);
  t.match(s, { plan_id: 'plus-monthly', amount: 2999, role: 'premium-plus', period: 'P1M' });
  t.same(s.paid_through, end, "the period's end stays");
  await waitFor(
    async () => {
      const r = await rolesOf('user-alice');
      return r.includes('premium-plus') && !r.includes('premium');
    },
    { what: 'premium-plus granted, premium revoked at the Auth service' },
  );
});

t.test('monthly to yearly: a new period starts now, the unused month credited', async (t) => {
  const bob = await subscribe('user-bob', 'pro-monthly', 'premium');
  const changed = await call('POST', `/v1/subscriptions/${bob.id}/change`, bob.token, { planId: 'pro-yearly' });
  t.equal(changed.status, 202);
  const [done] = await waitFor(
    async () => {
      const n = await note('subscription.plan_changed', bob.id);
      return n.length ? n : null;
    },
    { what: 'subscription.plan_changed', timeoutMs: 20_000 },
  );
  const effectiveAt = new Date(String(done!.data['effectiveAt']));
  const { start, end } = bob.period;
  const credit = muldiv(999, end.getTime() - effectiveAt.getTime(), end.getTime() - start.getTime());
  t.equal(done!.data['amountCharged'], 9990 - credit, `9990 − floor(999 × r / T) = ${9990 - credit}`);
  const charges = await chargesOf(changed.body.paymentId);
  t.same(
    charges.map((c) => c.body.purchase_units[0].amount.value),
    [((9990 - credit) / 100).toFixed(2)],
  );
  const view = await call('GET', `/v1/subscriptions/${bob.id}`, bob.token);
  t.equal(view.body.planId, 'pro-yearly');
  t.equal(view.body.period, 'P1Y');
  t.equal(view.body.currentPeriodStart, effectiveAt.toISOString(), 'the new period starts at the change');
  const yearLater = new Date(effectiveAt);
  yearLater.setUTCFullYear(yearLater.getUTCFullYear() + 1);
  t.equal(view.body.currentPeriodEnd, yearLater.toISOString(), 'and lasts a year');
  t.ok((await rolesOf('user-bob')).includes('premium'), 'the same role, kept');
});

t.test('refusals: the same plan, another currency, an unknown plan; the preview refuses alike', async (t) => {
  const carol = await subscribe('user-carol2', 'lite-monthly', 'lite');
  const same = await call('POST', `/v1/subscriptions/${carol.id}/change`, carol.token, { planId: 'lite-monthly' });
  t.equal(same.status, 409);
  t.equal(same.body.type, '/problems/same-plan');
  const eur = await call('POST', `/v1/subscriptions/${carol.id}/change`, carol.token, { planId: 'team-monthly' });
  t.equal(eur.status, 422);
  t.equal(eur.body.type, '/problems/currency-mismatch');
  t.equal((await call('POST', `/v1/subscriptions/${carol.id}/change`, carol.token, { planId: 'nope' })).status, 404);
  t.equal((await call('GET', `/v1/subscriptions/${carol.id}/change?planId=team-monthly`, carol.token)).status, 422);
  const other = await stack.tokenFor('user-mallory');
  t.equal(
    (await call('GET', `/v1/subscriptions/${carol.id}/change?planId=pro-monthly`, other)).status,
    404,
    "another's subscription",
  );
  t.equal((await call('DELETE', `/v1/subscriptions/${carol.id}/change`, carol.token)).status, 404, 'nothing scheduled');
  t.equal((await subRow(carol.id)).plan_id, 'lite-monthly');
});

t.test(
  'a downgrade waits for the period end: the renewal charges the new price, plan and role switch at the boundary',
  async (t) => {
    const dan = await subscribe('user-dan', 'fast-big', 'fast-big');
    const preview = await call('GET', `/v1/subscriptions/${dan.id}/change?planId=fast-small`, dan.token);
    t.match(preview.body, { amountDueNow: 0, effectiveAt: dan.period.end.toISOString() });
    const scheduled = await call('POST', `/v1/subscriptions/${dan.id}/change`, dan.token, { planId: 'fast-small' });
    t.equal(scheduled.status, 200);
    t.same(scheduled.body.subscription.scheduledChange, {
      planId: 'fast-small',
      effectiveAt: dan.period.end.toISOString(),
    });
    t.equal(scheduled.body.paymentId, null);
    const dropped = await call('DELETE', `/v1/subscriptions/${dan.id}/change`, dan.token);
    t.equal(dropped.status, 200);
    t.equal(dropped.body.scheduledChange, null, 'dropped');
    const again = await call('POST', `/v1/subscriptions/${dan.id}/change`, dan.token, { planId: 'fast-small' });
    t.equal(again.body.subscription.scheduledChange.planId, 'fast-small', 'scheduled again');
    t.equal((await subRow(dan.id)).plan_id, 'fast-big', 'nothing switched yet');
    const [done] = await waitFor(
      async () => {
        const n = await note('subscription.plan_changed', dan.id);
        return n.length ? n : null;
      },
      { what: 'the downgrade applied at the boundary', timeoutMs: 60_000 },
    );
    t.equal(done!.data['effectiveAt'], dan.period.end.toISOString(), 'at the boundary');
    t.ok(Date.now() >= dan.period.end.getTime(), 'not before it');
    const renewal = await db
      .selectFrom('payments')
      .selectAll()
      .where('subscription_id', '=', dan.id)
      .where('kind', '=', 'renewal')
      .executeTakeFirstOrThrow();
    t.match(renewal, { amount: 300, status: 'completed', period_index: 1 }, 'the renewal charged the new price');
    t.same(
      (await chargesOf(renewal.id)).map((c) => c.body.purchase_units[0].amount.value),
      ['3.00'],
    );
    t.match(await subRow(dan.id), { plan_id: 'fast-small', amount: 300, role: 'fast-small', scheduled_plan_id: null });
    await waitFor(
      async () => {
        const r = await rolesOf('user-dan');
        return r.includes('fast-small') && !r.includes('fast-big');
      },
      { what: 'the roles switched at the Auth service' },
    );
    const changes = await db
      .selectFrom('plan_changes')
      .selectAll()
      .where('subscription_id', '=', dan.id)
      .orderBy('created_at')
      .execute();
    t.same(
      changes.map((c) => c.status),
      ['dropped', 'applied'],
      'history kept',
    );
  },
);

t.test('an upgrade whose charge is declined changes nothing and says why', async (t) => {
  const erin = await subscribe('user-erin', 'pro-monthly', 'premium');
  const vault = (await subRow(erin.id)).vault_id!;
  await stack.paypal('/_control/behaviour', { declineVaults: { [vault]: 1 } });
  const changed = await call('POST', `/v1/subscriptions/${erin.id}/change`, erin.token, { planId: 'plus-monthly' });
  t.equal(changed.status, 202);
  const [failed] = await waitFor(
    async () => {
      const n = await note('subscription.plan_change_failed', erin.id);
      return n.length ? n : null;
    },
    { what: 'subscription.plan_change_failed', timeoutMs: 20_000 },
  );
  t.equal(failed!.data['reason'], 'declined');
  t.match(await subRow(erin.id), { plan_id: 'pro-monthly', amount: 999, role: 'premium', status: 'active' });
  t.match(
    await db.selectFrom('payments').selectAll().where('id', '=', changed.body.paymentId).executeTakeFirstOrThrow(),
    {
      status: 'failed',
    },
  );
  const roles = await rolesOf('user-erin');
  t.ok(roles.includes('premium') && !roles.includes('premium-plus'), 'roles untouched');
});

t.test('a role held from outside is kept per role across a plan change to another role, both ways', async (t) => {
  const upgradeAndCancel = async (userId: string) => {
    const sub = await subscribe(userId, 'pro-monthly', 'premium');
    const changed = await call('POST', `/v1/subscriptions/${sub.id}/change`, sub.token, { planId: 'plus-monthly' });
    t.equal(changed.status, 202);
    await waitFor(async () => (await subRow(sub.id)).role === 'premium-plus', { what: `${userId} on plus-monthly` });
    t.equal((await call('POST', `/v1/subscriptions/${sub.id}/cancel`, sub.token, { mode: 'immediately' })).status, 200);
    await waitFor(async () => (await subRow(sub.id)).status === 'cancelled', { what: 'cancelled' });
    await stack.quiet();
    return rolesOf(userId);
  };
  // Holds premium from outside: premium stays, premium-plus (given by us) goes.
  await stack.auth('/_control/users', { id: 'user-hana', roles: ['user', 'premium'] });
  const hana = await upgradeAndCancel('user-hana');
  t.ok(hana.includes('premium'), 'premium, held before us, is kept');
  t.notOk(hana.includes('premium-plus'), 'premium-plus, given by the plan change, is revoked');
  // Holds premium-plus from outside: premium (given by us) goes, premium-plus stays.
  await stack.auth('/_control/users', { id: 'user-ivan', roles: ['user', 'premium-plus'] });
  const ivan = await upgradeAndCancel('user-ivan');
  t.notOk(ivan.includes('premium'), 'premium, given by us, is revoked');
  t.ok(ivan.includes('premium-plus'), 'premium-plus, held before the change, is kept');
});

t.test('what PayPal, the Auth service and the broker saw adds up', async (t) => {
  await stack.quiet();
  t.same(await brokenInvariants(stack), []);
});
