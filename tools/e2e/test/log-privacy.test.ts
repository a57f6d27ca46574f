import t from 'tap';
import { waitFor } from '@billing/testing';
import { startStack } from '../src/stack.js';

// docs/processes.md, logging: no id that identifies a buyer or their PayPal wallet (PayerID, account
// id, payment-token / vault id, customer id, setup-token id) reaches a log line. The apps run at
// LOG_LEVEL=debug through a purchase by PayPal's buyer pages (the return URL carries PayerID), a
// renewal through the saved wallet, a payment-method replacement (the vault return carries the
// setup token as approval_token_id and approval_session_id) and a free trial; then every line every
// app wrote is searched for every such id the PayPal stand-in issued.
const stack = await startStack(
  { LOG_LEVEL: 'debug', SCHEDULER_INTERVAL_MS: '500', RENEWAL_LEAD_MS: '2000' },
  {
    plans: [
      {
        id: 'quick',
        name: 'Quick',
        description: '',
        amount: 300,
        currency: 'USD',
        period: 'PT10S',
        role: 'quick-role',
        active: true,
      },
      {
        id: 'tryout',
        name: 'Tryout',
        description: '',
        amount: 400,
        currency: 'USD',
        period: 'P1M',
        role: 'tryout-role',
        active: true,
        trialPeriod: 'P14D',
      },
    ],
  },
);
t.teardown(() => stack.stop());
const db = stack.tdb.db;
const API = stack.urls['billing-api'];
const subRow = (id: string) =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

/** The buyer at PayPal's approval page, then back on our return URL, as a browser would go. */
async function approveAsBuyer(approvalUrl: string, form: string, page: string) {
  const approved = await fetch(`${stack.urls.paypal}${page}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
    redirect: 'manual',
  });
  t.equal(approved.status, 303, `PayPal sends the buyer back (${new URL(approvalUrl).pathname})`);
  const back = await fetch(approved.headers.get('location')!, { redirect: 'manual' });
  t.equal(back.status, 303, 'our return URL answers');
  return approved.headers.get('location')!;
}

t.test('no wallet or payer id PayPal issued appears in any log line', async (t) => {
  const token = await stack.tokenFor('user-private');
  const bought = await fetch(`${API}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId: 'quick' }),
  });
  const created = (await bought.json()) as { subscriptionId: string; approvalUrl: string };
  const orderId = new URL(created.approvalUrl).searchParams.get('token')!;
  const returned = await approveAsBuyer(created.approvalUrl, `token=${orderId}`, '/checkoutnow/approve');
  t.match(returned, /PayerID=/, 'the return URL carried a PayerID');
  // Active with a saved wallet, then renewed through it at least once.
  await waitFor(
    async () =>
      (await db
        .selectFrom('payments')
        .select('id')
        .where('subscription_id', '=', created.subscriptionId)
        .where('kind', '=', 'renewal')
        .where('status', '=', 'completed')
        .executeTakeFirst()) ?? null,
    { what: 'a renewal charged through the saved wallet', timeoutMs: 40_000 },
  );
  // A payment-method replacement through PayPal's vault approval.
  const started = await fetch(`${API}/v1/subscriptions/${created.subscriptionId}/payment-method`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(started.status, 201);
  const { approvalUrl } = (await started.json()) as { approvalUrl: string };
  const sessionId = new URL(approvalUrl).searchParams.get('approval_session_id')!;
  const vaultBack = await approveAsBuyer(approvalUrl, `approval_session_id=${sessionId}`, '/agreements/approve');
  t.match(vaultBack, /approval_token_id=/, 'the vault return carried the setup token');
  const before = (await subRow(created.subscriptionId)).vault_id;
  await waitFor(async () => (await subRow(created.subscriptionId)).vault_id !== before, {
    what: 'the new wallet saved',
    timeoutMs: 20_000,
  });
  // A free trial: a setup token at checkout, a payment token once approved.
  const trialToken = await stack.tokenFor('user-private-trial');
  const trial = (await (
    await fetch(`${API}/v1/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${trialToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ planId: 'tryout' }),
    })
  ).json()) as { subscriptionId: string; approvalUrl: string };
  await approveAsBuyer(
    trial.approvalUrl,
    `approval_session_id=${new URL(trial.approvalUrl).searchParams.get('approval_session_id')}`,
    '/agreements/approve',
  );
  await waitFor(async () => (await subRow(trial.subscriptionId)).status === 'trialing', { what: 'trialing' });
  await stack.quiet();

  const ids = ((await stack.paypal('/_control/wallet-ids')) as string[]).filter((id) => id.length >= 6);
  t.ok(ids.length >= 8, `the stand-in issued payer, wallet, customer and setup-token ids (${ids.length})`);
  const apps = [...stack.processes.entries()].filter(([name]) => name !== 'paypal' && name !== 'auth');
  const lines = apps.flatMap(([name, p]) =>
    p
      .output()
      .split('\n')
      .filter(Boolean)
      .map((line) => ({ name, line })),
  );
  t.ok(lines.length > 30, `the apps logged at debug level (${lines.length} lines)`);
  t.ok(
    lines.some((l) => l.line.includes('/v1/checkout/return')),
    'the return URL request was logged (by its route)',
  );
  const leaks = lines.flatMap(({ name, line }) =>
    ids.filter((id) => line.includes(id)).map((id) => `${name}: ${id} in ${line.slice(0, 300)}`),
  );
  t.same(leaks, [], 'no log line carries one of them');
});
