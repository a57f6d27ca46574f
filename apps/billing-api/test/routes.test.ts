import vm from 'node:vm';
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { AuthClient, AuthUnavailableError } from '@billing/auth-client';
import { issueReceipt, payments, recoveryToken, subscriptions } from '@billing/billing-core';
import { sql } from 'kysely';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { ProviderRefusedError, type CreateCheckoutInput, type PaymentProvider } from '@billing/payments';
import { createRuntime } from '@billing/runtime';
import { createTestVhost, hs256Token, waitFor } from '@billing/testing';
import { buildApp } from '../src/app.js';
import { loadBillingApiConfig } from '../src/config.js';

// The middle layer for billing-api: every route through app.inject, on a real migrated
// database, with an Auth client and a PaymentProvider whose answers the test scripts. What
// moves money or roles is read back from the tables and the outbox.
const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
const secret = 'routes-test-secret-0123456789abcdef';
const config = loadBillingApiConfig({
  DATABASE_URL: tdb.url,
  AMQP_URL: vhost.url,
  JWT_SECRET: secret,
  AUTH_SERVICE_URL: 'http://127.0.0.1:9',
  AUTH_SERVICE_TOKEN: 'svc',
  PAYPAL_CLIENT_ID: 'id',
  PAYPAL_CLIENT_SECRET: 'secret',
  APP_HOME_URL: 'http://shop.test/home?x=1',
  LOG_LEVEL: 'error',
  RECOVERY_LINK_SECRET: 'routes-test-recovery-link-secret-0123456789',
});
const rt = createRuntime('billing-api-routes-test', config);
let authDown = false;
class FakeAuth extends AuthClient {
  override async getRoles() {
    if (authDown) throw new AuthUnavailableError('the Auth service is unreachable');
    return ['user'];
  }
}
const created: CreateCheckoutInput[] = [];
let checkoutAnswer: (
  i: CreateCheckoutInput,
) => Promise<{ orderId: string; approvalUrl: string; status: string }> = async (i) => ({
  orderId: `ORD-${i.paymentId}`,
  approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${i.paymentId}`,
  status: 'PAYER_ACTION_REQUIRED',
});
let setupAnswer: () => Promise<{ setupTokenId: string; status: string; approvalUrl: string | null }> = async () => ({
  setupTokenId: `SETUP-${randomUUID().slice(0, 8)}`,
  status: 'PAYER_ACTION_REQUIRED',
  approvalUrl: 'http://paypal.test/agreements/approve?approval_session_id=X',
});
const provider = {
  name: 'fake',
  async createCheckout(input: CreateCheckoutInput) {
    created.push(input);
    return checkoutAnswer(input);
  },
  createSetupToken: () => setupAnswer(),
} as unknown as PaymentProvider;
const app = await buildApp({
  rt,
  config,
  provider,
  auth: new FakeAuth({ baseUrl: 'http://127.0.0.1:9', serviceToken: 'svc' }),
});
t.teardown(async () => {
  await app.close();
  await rt.close();
  await tdb.drop();
  await vhost.drop();
});
await importCatalog(rt.db, [
  {
    id: 'pro',
    name: 'Pro',
    description: 'Pro',
    amount: 999,
    currency: 'USD',
    period: 'P1M',
    role: 'premium',
    active: true,
  },
  {
    id: 'old',
    name: 'Old',
    description: '',
    amount: 500,
    currency: 'USD',
    period: 'P1M',
    role: 'legacy',
    active: false,
  },
]);
const db = rt.db;

const token = (sub: string) => hs256Token(secret, sub);
async function call(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  user?: string,
  payload?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await app.inject({
    method,
    url,
    headers: {
      ...(user ? { authorization: `Bearer ${token(user)}` } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
  });
  return { status: res.statusCode, body: res.body ? (res.json() as any) : null, headers: res.headers };
}
const buy = (user: string, planId = 'pro', headers: Record<string, string> = {}) =>
  call('POST', '/v1/subscriptions', user, { planId }, headers);
const sub = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const pay = (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const countOf = async (table: 'subscriptions' | 'payments', userId: string) =>
  (await db.selectFrom(table).select('id').where('user_id', '=', userId).execute()).length;
async function outbox(type: string, match: (d: Record<string, unknown>) => boolean) {
  const rows = await db.selectFrom('outbox').select('envelope').where('type', '=', type).execute();
  return rows.map((r) => (r.envelope as { data: Record<string, unknown> }).data).filter(match);
}

/** Makes a checkout's subscription active in its first period, paid by its payment (as the payment-worker would). */
async function activate(subscriptionId: string, paymentId: string, startedAgoMs = 10 * 86_400_000) {
  const anchor = new Date(Date.now() - startedAgoMs);
  const end = new Date(anchor.getTime() + 30 * 86_400_000);
  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: paymentId }))!;
    await payments.transition(
      trx,
      p,
      { type: 'capture_completed' },
      { provider_capture_id: `CAP-${paymentId}`, period_start: anchor, period_end: end },
    );
    const s = (await subscriptions.lock(trx, subscriptionId))!;
    await subscriptions.transition(
      trx,
      s,
      { type: 'initial_payment_completed' },
      { anchor_at: anchor, paid_through: end, vault_id: 'VAULT-1' },
    );
    await trx
      .insertInto('role_grants')
      .values({ id: randomUUID(), user_id: s.user_id, role: s.role, source: 'subscription', subscription_id: s.id })
      .execute();
  });
}

t.test('plans: public, active only; an ETag, and 304 for a client that has them', async (t) => {
  const res = await call('GET', '/v1/plans');
  t.equal(res.status, 200);
  t.match(res.headers['etag'], /^"[\w-]+"$/);
  const again = await app.inject({ url: '/v1/plans', headers: { 'if-none-match': String(res.headers['etag']) } });
  t.equal(again.statusCode, 304);
  t.equal(again.body, '', 'no body');
  // A plan changed anywhere (the admin portal is another process) shows on the next requests: the
  // catalogue kept in memory is dropped when Postgres announces the change.
  // Kept in memory: a change Postgres does not announce (the trigger off) is not seen...
  await sql`alter table plans disable trigger plans_changed`.execute(db);
  await db.updateTable('plans').set({ description: 'unannounced' }).where('id', '=', 'pro').execute();
  await sql`alter table plans enable trigger plans_changed`.execute(db);
  t.equal((await call('GET', '/v1/plans')).body.items[0]?.description, 'Pro', 'the catalogue is served from memory');
  // ...an announced one is, on the next request.
  await db.updateTable('plans').set({ name: 'Pro+', description: 'Pro' }).where('id', '=', 'pro').execute();
  const started = Date.now();
  await waitFor(async () => (await call('GET', '/v1/plans')).body.items[0]?.name === 'Pro+', {
    what: 'the renamed plan',
    timeoutMs: 2_000,
    intervalMs: 5,
  });
  t.ok(Date.now() - started < 500, `shown ${Date.now() - started} ms after the change`);
  await db.updateTable('plans').set({ active: false }).where('id', '=', 'pro').execute();
  await waitFor(async () => (await call('GET', '/v1/plans')).body.items.length === 0, {
    what: 'the plan gone',
    timeoutMs: 2_000,
    intervalMs: 5,
  });
  await db.updateTable('plans').set({ active: true, name: 'Pro' }).where('id', '=', 'pro').execute();
  await waitFor(async () => (await call('GET', '/v1/plans')).body.items[0]?.name === 'Pro', {
    what: 'the plan back',
    timeoutMs: 2_000,
    intervalMs: 5,
  });
  // The listening connection lost: nothing is kept until it is back, so no change is missed meanwhile.
  await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'plans-listener' and datname = current_database()`.execute(
    db,
  );
  await sql`alter table plans disable trigger plans_changed`.execute(db);
  await db.updateTable('plans').set({ description: 'while deaf' }).where('id', '=', 'pro').execute();
  await sql`alter table plans enable trigger plans_changed`.execute(db);
  await waitFor(async () => (await call('GET', '/v1/plans')).body.items[0]?.description === 'while deaf', {
    what: 'a change made while the listener was away',
    timeoutMs: 3_000,
    intervalMs: 20,
  });
  t.same(res.body.items, [
    {
      id: 'pro',
      name: 'Pro',
      description: 'Pro',
      amount: 999,
      currency: 'USD',
      period: 'P1M',
      role: 'premium',
      trialPeriod: null,
    },
  ]);
});

t.test(
  'checkout: the subscription and its first payment recorded, the order created with our ids, 201 or a 303 to PayPal',
  async (t) => {
    const res = await buy('u-buy');
    t.equal(res.status, 201);
    t.match(res.body, { status: 'pending', approvalUrl: /^http:\/\/paypal\.test\/checkoutnow\?token=ORD-/ });
    t.match(await sub(res.body.subscriptionId), {
      status: 'pending',
      user_id: 'u-buy',
      plan_id: 'pro',
      amount: 999,
      role: 'premium',
      approval_url: res.body.approvalUrl,
    });
    t.match(await pay(res.body.paymentId), {
      status: 'pending',
      kind: 'initial',
      amount: 999,
      provider_order_id: `ORD-${res.body.paymentId}`,
    });
    t.match(created.at(-1), {
      paymentId: res.body.paymentId,
      amount: 999,
      currency: 'USD',
      idempotencyKey: `${res.body.paymentId}:create`,
      returnUrl: 'http://127.0.0.1:3000/v1/checkout/return',
    });
    const redirect = await call('POST', '/v1/subscriptions?redirect=true', 'u-redirect', { planId: 'pro' });
    t.equal(redirect.status, 303);
    t.match(redirect.headers['location'], /^http:\/\/paypal\.test\/checkoutnow\?token=ORD-/);
  },
);

t.test('checkout refusals: unknown or inactive plan, a bad plan id, no token; nothing recorded', async (t) => {
  t.equal((await buy('u-refused', 'nope')).status, 404);
  t.equal((await buy('u-refused', 'old')).status, 404);
  t.equal((await buy('u-refused', 'Not A Slug')).status, 400);
  t.equal((await call('POST', '/v1/subscriptions', undefined, { planId: 'pro' })).status, 401);
  t.equal(await countOf('subscriptions', 'u-refused'), 0);
});

t.test(
  'a second checkout replaces an unfinished one; an approved one or an active subscription refuses it',
  async (t) => {
    const first = await buy('u-again');
    const second = await buy('u-again');
    t.equal(second.status, 201);
    t.match(await sub(first.body.subscriptionId), { status: 'cancelled' });
    t.match(await pay(first.body.paymentId), { status: 'cancelled', failure_reason: 'replaced' });
    await db
      .transaction()
      .execute(async (trx) =>
        payments.transition(trx, (await payments.lock(trx, { id: second.body.paymentId }))!, { type: 'approved' }),
      );
    const third = await buy('u-again');
    t.equal(third.status, 409);
    t.equal(third.body.type, '/problems/checkout-in-progress');
    const paid = await buy('u-active');
    await activate(paid.body.subscriptionId, paid.body.paymentId);
    const again = await buy('u-active');
    t.equal(again.status, 409);
    t.equal(again.body.type, '/problems/already-subscribed');
  },
);

t.test(
  "a webhook that moved the payment on before PayPal's answer reached the checkout: the state kept, PayPal's ids recorded",
  async (t) => {
    checkoutAnswer = async (i) => {
      // The buyer approved and the payment-worker applied it while the create-order answer was on its way.
      await db.updateTable('payments').set({ status: 'approved' }).where('id', '=', i.paymentId).execute();
      return {
        orderId: `ORD-${i.paymentId}`,
        approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${i.paymentId}`,
        status: 'PAYER_ACTION_REQUIRED',
      };
    };
    try {
      const res = await buy('u-moved');
      t.equal(res.status, 201);
      t.match(await pay(res.body.paymentId), {
        status: 'approved',
        provider_order_id: `ORD-${res.body.paymentId}`,
        approval_url: res.body.approvalUrl,
      });
      t.match(await sub(res.body.subscriptionId), { status: 'pending', approval_url: res.body.approvalUrl });
    } finally {
      checkoutAnswer = async (i) => ({
        orderId: `ORD-${i.paymentId}`,
        approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${i.paymentId}`,
        status: 'PAYER_ACTION_REQUIRED',
      });
    }
  },
);

t.test(
  'PayPal refusing or unreachable: 502, the payment failed, the subscription cancelled; the Auth service down: 503, nothing recorded',
  async (t) => {
    checkoutAnswer = async () => {
      throw new ProviderRefusedError(422, 'UNPROCESSABLE_ENTITY', 'PayPal create-order: 422');
    };
    const refused = await buy('u-502');
    t.equal(refused.status, 502);
    t.equal(refused.body.type, '/problems/payment-provider-refused');
    checkoutAnswer = async () => {
      throw new Error('ETIMEDOUT');
    };
    const away = await buy('u-502b');
    t.equal(away.body.type, '/problems/payment-provider-unavailable');
    for (const user of ['u-502', 'u-502b']) {
      const s = await db.selectFrom('subscriptions').selectAll().where('user_id', '=', user).executeTakeFirstOrThrow();
      t.equal(s.status, 'cancelled', `${user}: cancelled`);
      t.match(
        await db.selectFrom('payments').selectAll().where('subscription_id', '=', s.id).executeTakeFirstOrThrow(),
        { status: 'failed', failure_reason: 'provider_error' },
      );
    }
    checkoutAnswer = async (i) => ({
      orderId: `ORD-${i.paymentId}`,
      approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${i.paymentId}`,
      status: 'PAYER_ACTION_REQUIRED',
    });
    t.equal((await buy('u-502')).status, 201, 'the user can buy again');
    authDown = true;
    const noAuth = await buy('u-503');
    authDown = false;
    t.equal(noAuth.status, 503);
    t.ok(Number(noAuth.headers['retry-after']) > 0);
    t.equal(await countOf('subscriptions', 'u-503'), 0);
  },
);

t.test('Idempotency-Key: the first answer replayed, another body 422, a bad key 400, a 5xx not kept', async (t) => {
  const key = { 'idempotency-key': `k-${randomUUID()}` };
  const first = await buy('u-idem', 'pro', key);
  const replay = await buy('u-idem', 'pro', key);
  t.equal(replay.status, 201);
  t.same(replay.body, first.body);
  t.equal(await countOf('payments', 'u-idem'), 1, 'one payment');
  t.equal((await buy('u-idem', 'old', key)).body.type, '/problems/idempotency-key-reused');
  t.equal((await buy('u-idem', 'pro', { 'idempotency-key': 'tab\tkey' })).status, 400);
  const other = await buy('u-idem-2', 'pro', key);
  t.equal(other.status, 201, "another user's key of the same value is unrelated");
  t.not(other.body.paymentId, first.body.paymentId);
  checkoutAnswer = async () => {
    throw new Error('ECONNRESET');
  };
  const failedKey = { 'idempotency-key': `k-${randomUUID()}` };
  t.equal((await buy('u-idem-3', 'pro', failedKey)).status, 502);
  checkoutAnswer = async (i) => ({
    orderId: `ORD-${i.paymentId}`,
    approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${i.paymentId}`,
    status: 'PAYER_ACTION_REQUIRED',
  });
  t.equal((await buy('u-idem-3', 'pro', failedKey)).status, 201, 'the key can be used again after a 5xx');
});

t.test('a request still running under the same key: 409', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  checkoutAnswer = async (i) => {
    await held;
    return {
      orderId: `ORD-${i.paymentId}`,
      approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${i.paymentId}`,
      status: 'PAYER_ACTION_REQUIRED',
    };
  };
  const key = { 'idempotency-key': `k-${randomUUID()}` };
  const first = buy('u-inflight', 'pro', key);
  // The first request holds its key once the key's row exists (it then waits on PayPal, held above).
  await waitFor(
    () => db.selectFrom('idempotency_keys').select('key').where('user_id', '=', 'u-inflight').executeTakeFirst(),
    { what: 'the first request holding its key', intervalMs: 5 },
  );
  const second = await buy('u-inflight', 'pro', key);
  t.equal(second.status, 409);
  t.equal(second.body.type, '/problems/idempotency-key-in-flight');
  release();
  t.equal((await first).status, 201);
});

t.test('at most 10 checkouts a minute per user, then 429 with Retry-After', async (t) => {
  for (let i = 0; i < 10; i++) t.equal((await buy('u-rate')).status, 201);
  const over = await buy('u-rate');
  t.equal(over.status, 429);
  t.ok(Number(over.headers['retry-after']) > 0);
});

t.test(
  "lists and reads: the caller's own, newest first, paged by cursor; another's or a non-UUID is 404",
  async (t) => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.unshift((await buy('u-list')).body.subscriptionId);
    const page1 = await call('GET', '/v1/subscriptions?limit=2', 'u-list');
    t.equal(page1.body.items.length, 2);
    t.ok(page1.body.nextCursor);
    const page2 = await call('GET', `/v1/subscriptions?limit=2&cursor=${page1.body.nextCursor}`, 'u-list');
    t.same(
      [...page1.body.items, ...page2.body.items].map((s: any) => s.id),
      ids,
    );
    t.equal(page2.body.nextCursor, null);
    t.equal((await call('GET', '/v1/subscriptions?cursor=bogus', 'u-list')).status, 400);
    t.equal((await call('GET', `/v1/subscriptions/${ids[0]}`, 'u-list')).body.id, ids[0]);
    t.equal((await call('GET', `/v1/subscriptions/${ids[0]}`, 'u-someone')).status, 404);
    t.equal((await call('GET', '/v1/subscriptions/not-a-uuid', 'u-list')).status, 404);
    const pays = await call('GET', '/v1/payments?limit=5', 'u-list');
    t.equal(pays.body.items.length, 3);
    const one = await call('GET', `/v1/payments/${pays.body.items[0].id}`, 'u-list');
    t.match(one.body, { kind: 'initial', amount: 999, refundedAmount: 0, status: 'pending' });
    t.equal((await call('GET', `/v1/payments/${pays.body.items[0].id}`, 'u-someone')).status, 404);
    t.equal((await call('GET', '/v1/payments/nope', 'u-list')).status, 404);
  },
);

t.test(
  'cancel at the period end keeps the role; resume undoes it; immediately refunds pro rata and ends the grant',
  async (t) => {
    const { body } = await buy('u-cancel');
    await activate(body.subscriptionId, body.paymentId, 10 * 86_400_000);
    const atEnd = await call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-cancel');
    t.match(atEnd.body, { status: 'active', cancelAtPeriodEnd: true, cancelledAt: null });
    t.equal(
      (
        await db
          .selectFrom('role_grants')
          .select('ended_at')
          .where('subscription_id', '=', body.subscriptionId)
          .executeTakeFirstOrThrow()
      ).ended_at,
      null,
    );
    t.match((await outbox('subscription.cancelled', (d) => d['subscriptionId'] === body.subscriptionId))[0], {
      mode: 'at_period_end',
      refundAmount: 0,
    });
    t.match((await call('POST', `/v1/subscriptions/${body.subscriptionId}/resume`, 'u-cancel')).body, {
      cancelAtPeriodEnd: false,
    });
    t.equal(
      (await call('POST', `/v1/subscriptions/${body.subscriptionId}/resume`, 'u-cancel')).status,
      200,
      'resuming again changes nothing',
    );
    // docs/api.md, cancel: the reason the buyer gives is kept; one not on the list is a 400.
    t.equal(
      (await call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-cancel', { reason: 'bored' })).status,
      400,
    );
    const now = await call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-cancel', {
      mode: 'immediately',
      reason: 'too_expensive',
    });
    t.match(now.body, { status: 'cancelled', cancelledAt: /Z$/ });
    t.equal(
      (
        await db
          .selectFrom('subscriptions')
          .select('cancel_reason')
          .where('id', '=', body.subscriptionId)
          .executeTakeFirstOrThrow()
      ).cancel_reason,
      'too_expensive',
    );
    const refunds = await db.selectFrom('refunds').selectAll().where('payment_id', '=', body.paymentId).execute();
    t.equal(refunds.length, 1);
    // 20 of 30 days left: floor(999 × 20/30) = 666, within a few ms of the request
    t.ok(refunds[0]!.amount >= 665 && refunds[0]!.amount <= 666, `pro rata: ${refunds[0]!.amount}`);
    t.match(refunds[0], { status: 'requested', origin: 'user_cancel', requested_by: 'user:u-cancel' });
    t.ok(
      (
        await db
          .selectFrom('role_grants')
          .select('ended_at')
          .where('subscription_id', '=', body.subscriptionId)
          .executeTakeFirstOrThrow()
      ).ended_at,
    );
    t.equal((await outbox('role.change.requested', (d) => d['userId'] === 'u-cancel')).length, 1, 'the revoke queued');
    const again = await call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-cancel', {
      mode: 'immediately',
    });
    t.equal(again.body.cancelledAt, now.body.cancelledAt, 'a second cancel changes nothing');
    t.equal(
      (await db.selectFrom('refunds').select('id').where('payment_id', '=', body.paymentId).execute()).length,
      1,
      'and refunds nothing more',
    );
    const resume = await call('POST', `/v1/subscriptions/${body.subscriptionId}/resume`, 'u-cancel');
    t.equal(resume.status, 409);
    t.equal(resume.body.type, '/problems/not-resumable');
    t.equal((await call('POST', `/v1/subscriptions/${randomUUID()}/cancel`, 'u-cancel')).status, 404);
    t.equal(
      (await call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-cancel', { mode: 'later' })).status,
      400,
    );
  },
);

t.test('cancelling a pending checkout cancels it and its payment, without a notification', async (t) => {
  const { body } = await buy('u-pending-cancel');
  const res = await call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-pending-cancel', {
    mode: 'immediately',
  });
  t.match(res.body, { status: 'cancelled', approvalUrl: null });
  t.match(await pay(body.paymentId), { status: 'cancelled' });
  t.same(await outbox('subscription.cancelled', (d) => d['subscriptionId'] === body.subscriptionId), []);
});

t.test(
  'the return URL asks the payment-worker to look the order up; the cancel URL ends a pending checkout',
  async (t) => {
    const { body } = await buy('u-return');
    const orderId = `ORD-${body.paymentId}`;
    const back = await call('GET', `/v1/checkout/return?token=${orderId}&PayerID=P1`);
    t.equal(back.status, 303);
    t.equal(back.headers['location'], 'http://shop.test/home?x=1&checkout=success');
    t.match(await outbox('payment.check.requested', (d) => d['orderId'] === orderId), [{ source: 'return_url' }]);
    t.equal(
      (await call('GET', '/v1/checkout/return?token=ORD-UNKNOWN')).status,
      303,
      'an unknown token gets the same answer',
    );
    t.same(await outbox('payment.check.requested', (d) => d['orderId'] === 'ORD-UNKNOWN'), [], 'and nothing is asked');
    const gaveUp = await call('GET', `/v1/checkout/cancel?token=${orderId}`);
    t.equal(gaveUp.headers['location'], 'http://shop.test/home?x=1&checkout=cancelled');
    t.match(await pay(body.paymentId), { status: 'cancelled' });
    t.match(await sub(body.subscriptionId), { status: 'cancelled' });
    // an approved payment is being captured: the cancel URL leaves it alone
    const other = await buy('u-return-2');
    await db
      .transaction()
      .execute(async (trx) =>
        payments.transition(trx, (await payments.lock(trx, { id: other.body.paymentId }))!, { type: 'approved' }),
      );
    await call('GET', `/v1/checkout/cancel?token=ORD-${other.body.paymentId}`);
    t.equal((await pay(other.body.paymentId)).status, 'approved');
    t.equal((await sub(other.body.subscriptionId)).status, 'pending');
    t.equal((await call('GET', '/v1/checkout/cancel')).status, 303);
  },
);

t.test(
  "a burst on one order's return URL asks PayPal about it once; 300 hits a minute from one client, then 429",
  async (t) => {
    const { body } = await buy('u-burst');
    const orderId = `ORD-${body.paymentId}`;
    const hits = await Promise.all(
      Array.from({ length: 200 }, () =>
        call('GET', `/v1/checkout/return?token=${orderId}`, undefined, undefined, {
          'x-forwarded-for': '198.51.100.7',
        }),
      ),
    );
    t.ok(
      hits.every((h) => h.status === 303),
      'every hit gets its 303',
    );
    t.equal(
      (await outbox('payment.check.requested', (d) => d['orderId'] === orderId)).length,
      1,
      'one look-up asked for',
    );
    let status = 303;
    for (let i = 0; i < 120 && status === 303; i++)
      status = (await call('GET', '/v1/checkout/return?token=ORD-OTHER')).status;
    t.equal(status, 429, 'past 300 hits a minute from one client address');
  },
);

t.test("the buyer's billing page: served with a strict CSP, its script and style files of its own", async (t) => {
  const page = await app.inject({ method: 'GET', url: '/billing?checkout=success' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  const csp = String(page.headers['content-security-policy']);
  t.match(csp, /script-src 'self'/);
  t.match(csp, /frame-ancestors 'none'/);
  t.notMatch(csp, /unsafe-inline/, 'nothing inline is allowed');
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  t.match(page.body, /<script src="\/billing\/app\.js" defer><\/script>/);
  t.notMatch(page.body, /<script>/, 'no inline script');
  const js = await app.inject({ method: 'GET', url: '/billing/app.js' });
  t.match(js.headers['content-type'], /javascript/);
  t.match(js.body, /sessionStorage/, 'the token is kept for the tab only');
  t.doesNotThrow(() => new vm.Script(js.body), 'compiled from src/page/billing.client.ts: plain JavaScript');
  t.notMatch(js.body, /\bimport\b|: string\b/, 'no module syntax or types left');
  const css = await app.inject({ method: 'GET', url: '/billing/app.css' });
  t.match(css.headers['content-type'], /text\/css/);
});

t.test(
  'plan changes: preview, upgrade (charged through the vault), downgrade scheduled and dropped, refusals',
  async (t) => {
    await importCatalog(rt.db, [
      {
        id: 'pro-plus',
        name: 'Pro+',
        description: '',
        amount: 2999,
        currency: 'USD',
        period: 'P1M',
        role: 'premium-plus',
        active: true,
      },
      {
        id: 'lite',
        name: 'Lite',
        description: '',
        amount: 499,
        currency: 'USD',
        period: 'P1M',
        role: 'lite',
        active: true,
      },
      {
        id: 'pro-eur',
        name: 'Pro EUR',
        description: '',
        amount: 999,
        currency: 'EUR',
        period: 'P1M',
        role: 'premium',
        active: true,
      },
      {
        id: 'tiny-yearly',
        name: 'Tiny yearly',
        description: '',
        amount: 100,
        currency: 'USD',
        period: 'P1Y',
        role: 'premium',
        active: true,
      },
    ]);
    const user = 'user-changer';
    const bought = await buy(user);
    await activate(bought.body.subscriptionId, bought.body.paymentId);
    const id = bought.body.subscriptionId as string;
    const s0 = await sub(id);
    const preview = await call('GET', `/v1/subscriptions/${id}/change?planId=pro-plus`, user);
    t.equal(preview.status, 200);
    const T = s0.paid_through!.getTime() - s0.anchor_at!.getTime();
    const r = s0.paid_through!.getTime() - Date.now();
    t.ok(Math.abs(preview.body.amountDueNow - Math.floor((2000 * r) / T)) <= 1, 'the prorated difference');
    t.match(preview.body, { planId: 'pro-plus', currency: 'USD' });
    // Refusals, for the preview and the change alike.
    t.equal((await call('GET', `/v1/subscriptions/${id}/change?planId=pro`, user)).body.type, '/problems/same-plan');
    t.equal((await call('GET', `/v1/subscriptions/${id}/change?planId=pro-eur`, user)).status, 422);
    t.equal((await call('GET', `/v1/subscriptions/${id}/change?planId=old`, user)).status, 404, 'an inactive plan');
    t.equal((await call('GET', `/v1/subscriptions/${id}/change?planId=pro-plus`, 'someone-else')).status, 404);
    t.equal((await call('GET', `/v1/subscriptions/not-a-uuid/change?planId=pro-plus`, user)).status, 404);
    t.equal(
      (await call('POST', `/v1/subscriptions/${id}/change`, user, { planId: 'pro-eur' })).body.type,
      '/problems/currency-mismatch',
    );
    t.equal((await call('POST', `/v1/subscriptions/${id}/change`, user, { planId: 'Bad Id' })).status, 400);
    // A downgrade: scheduled for the period end, then dropped.
    const down = await call('POST', `/v1/subscriptions/${id}/change`, user, { planId: 'lite' });
    t.equal(down.status, 200);
    t.same(down.body.subscription.scheduledChange, { planId: 'lite', effectiveAt: s0.paid_through!.toISOString() });
    t.equal((await call('GET', `/v1/subscriptions/${id}`, user)).body.scheduledChange.planId, 'lite');
    t.equal((await call('DELETE', `/v1/subscriptions/${id}/change`, user)).body.scheduledChange, null);
    t.equal((await call('DELETE', `/v1/subscriptions/${id}/change`, user)).status, 404, 'nothing left to drop');
    // An upgrade replaces a scheduled downgrade, and is charged through the vault.
    await call('POST', `/v1/subscriptions/${id}/change`, user, { planId: 'lite' });
    const up = await call(
      'POST',
      `/v1/subscriptions/${id}/change`,
      user,
      { planId: 'pro-plus' },
      { 'idempotency-key': 'chg-1' },
    );
    t.equal(up.status, 202);
    t.equal(up.body.subscription.scheduledChange, null, 'the scheduled downgrade was dropped');
    const p = await pay(up.body.paymentId);
    t.match(p, { kind: 'upgrade', status: 'created', currency: 'USD' });
    t.same(await outbox('payment.plan-change.requested', (d) => d['paymentId'] === p.id), [{ paymentId: p.id }]);
    const replay = await call(
      'POST',
      `/v1/subscriptions/${id}/change`,
      user,
      { planId: 'pro-plus' },
      { 'idempotency-key': 'chg-1' },
    );
    t.same(replay.body, up.body, 'the same answer for the same key, no second payment');
    const busy = await call('POST', `/v1/subscriptions/${id}/change`, user, { planId: 'tiny-yearly' });
    t.equal(busy.body.type, '/problems/not-changeable', 'one change at a time');
    const changes = await db
      .selectFrom('plan_changes')
      .selectAll()
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      .execute();
    t.same(
      changes.map((c) => c.status),
      ['dropped', 'dropped', 'pending'],
    );
  },
);

t.test(
  'plan changes: a credit above the new price applies at once and refunds the excess; no wallet, no upgrade',
  async (t) => {
    await importCatalog(rt.db, [
      {
        id: 'big-yearly',
        name: 'Big yearly',
        description: '',
        amount: 120000,
        currency: 'USD',
        period: 'P1Y',
        role: 'premium',
        active: true,
      },
    ]);
    const user = 'user-credit';
    const bought = await buy(user);
    await activate(bought.body.subscriptionId, bought.body.paymentId, 1000);
    const id = bought.body.subscriptionId as string;
    await db
      .updateTable('subscriptions')
      .set({ plan_id: 'big-yearly', amount: 120000, period: 'P1Y' })
      .where('id', '=', id)
      .execute();
    await db.updateTable('payments').set({ amount: 120000 }).where('id', '=', bought.body.paymentId).execute();
    const change = await call('POST', `/v1/subscriptions/${id}/change`, user, { planId: 'pro' });
    t.equal(change.status, 200, 'nothing due: applied now');
    t.equal(change.body.paymentId, null);
    t.match(change.body.subscription, { planId: 'pro', period: 'P1M', amount: 999 });
    const refunds = await db
      .selectFrom('refunds')
      .selectAll()
      .where('payment_id', '=', bought.body.paymentId)
      .execute();
    t.equal(refunds.length, 1, 'the excess credit refunded against the old payment');
    t.ok(refunds[0]!.amount > 100000 && refunds[0]!.amount < 120000 - 999 + 1);
    t.same(
      await outbox('subscription.plan_changed', (d) => d['subscriptionId'] === id).then((n) =>
        n.map((d) => d['amountCharged']),
      ),
      [0],
    );

    const user2 = 'user-nowallet';
    const b2 = await buy(user2);
    await activate(b2.body.subscriptionId, b2.body.paymentId);
    await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', b2.body.subscriptionId).execute();
    const noWallet = await call('POST', `/v1/subscriptions/${b2.body.subscriptionId}/change`, user2, {
      planId: 'pro-plus',
    });
    t.equal(noWallet.body.type, '/problems/no-payment-method');
    await call('POST', `/v1/subscriptions/${b2.body.subscriptionId}/cancel`, user2, { mode: 'at_period_end' });
    t.equal(
      (await call('POST', `/v1/subscriptions/${b2.body.subscriptionId}/change`, user2, { planId: 'pro-plus' })).body
        .type,
      '/problems/not-changeable',
    );
    const pending = await buy('user-pending-change');
    t.equal(
      (
        await call(
          'GET',
          `/v1/subscriptions/${pending.body.subscriptionId}/change?planId=pro-plus`,
          'user-pending-change',
        )
      ).status,
      409,
    );
  },
);

t.test('a receipt: HTML or PDF for its owner only, none before it is issued', async (t) => {
  const user = 'user-receipt';
  const bought = await buy(user);
  await activate(bought.body.subscriptionId, bought.body.paymentId);
  const url = `/v1/payments/${bought.body.paymentId}/receipt`;
  t.equal((await call('GET', url, user)).status, 404, 'not issued yet');
  const issued = await db.transaction().execute(async (trx) => {
    const p = await trx
      .selectFrom('payments')
      .selectAll()
      .where('id', '=', bought.body.paymentId)
      .executeTakeFirstOrThrow();
    return issueReceipt(trx, p, 'Pro (pro): subscription');
  });
  t.match(issued.number, /^R-\d{4}-USD-\d{6}$/);
  const html = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token(user)}` } });
  t.equal(html.statusCode, 200);
  t.match(html.headers['content-type'], /text\/html/);
  t.match(html.body, issued.number);
  t.match(html.body, '9.99 USD');
  t.match(String(html.headers['content-security-policy']), /default-src 'none'/);
  const pdf = await app.inject({
    method: 'GET',
    url,
    headers: { authorization: `Bearer ${token(user)}`, accept: 'application/pdf' },
  });
  t.equal(pdf.headers['content-type'], 'application/pdf');
  t.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-');
  t.equal((await call('GET', url, 'someone-else')).status, 404, "another user's receipt");
  t.equal((await call('GET', '/v1/payments/not-a-uuid/receipt', user)).status, 404);
});

t.test(
  "replacing the payment method: PayPal's vault approval, then the return URL hands it to the payment-worker",
  async (t) => {
    const user = 'user-newwallet';
    const bought = await buy(user);
    await activate(bought.body.subscriptionId, bought.body.paymentId);
    const id = bought.body.subscriptionId as string;
    let token = '';
    setupAnswer = async () => {
      token = `SETUP-${randomUUID().slice(0, 8)}`;
      return {
        setupTokenId: token,
        status: 'PAYER_ACTION_REQUIRED',
        approvalUrl: `http://paypal.test/agreements/approve?approval_session_id=${token}`,
      };
    };
    const started = await call('POST', `/v1/subscriptions/${id}/payment-method`, user);
    t.equal(started.status, 201);
    t.match(started.body.approvalUrl, token);
    const back = await call('GET', `/v1/checkout/vault-return?approval_token_id=${token}&approval_session_id=${token}`);
    t.equal(back.status, 303);
    t.equal(back.headers.location, 'http://shop.test/home?x=1&payment_method=saved');
    t.same(await outbox('payment.method.approved', (d) => d['setupTokenId'] === token), [{ setupTokenId: token }]);
    await call('GET', `/v1/checkout/vault-return?approval_token_id=UNKNOWN`);
    t.same(
      await outbox('payment.method.approved', (d) => d['setupTokenId'] === 'UNKNOWN'),
      [],
      'an unknown token asks nothing',
    );
    // Started again, then cancelled at PayPal.
    await call('POST', `/v1/subscriptions/${id}/payment-method`, user);
    const cancelled = await call('GET', `/v1/checkout/vault-cancel?approval_token_id=${token}`);
    t.equal(cancelled.headers.location, 'http://shop.test/home?x=1&payment_method=cancelled');
    t.equal(
      (
        await db
          .selectFrom('payment_method_requests')
          .select('status')
          .where('setup_token_id', '=', token)
          .executeTakeFirstOrThrow()
      ).status,
      'cancelled',
    );
    // Refusals: another user's, an ended subscription, PayPal refusing or away, no approval link.
    t.equal((await call('POST', `/v1/subscriptions/${id}/payment-method`, 'someone-else')).status, 404);
    setupAnswer = async () => {
      throw new ProviderRefusedError(422, 'UNPROCESSABLE_ENTITY', 'no');
    };
    t.equal(
      (await call('POST', `/v1/subscriptions/${id}/payment-method`, user)).body.type,
      '/problems/payment-provider-refused',
    );
    setupAnswer = async () => {
      throw new Error('socket hang up');
    };
    t.equal(
      (await call('POST', `/v1/subscriptions/${id}/payment-method`, user)).body.type,
      '/problems/payment-provider-unavailable',
    );
    setupAnswer = async () => ({ setupTokenId: 'S', status: 'APPROVED', approvalUrl: null });
    t.equal((await call('POST', `/v1/subscriptions/${id}/payment-method`, user)).status, 502);
    const pending = await buy('user-pending-wallet');
    t.equal(
      (await call('POST', `/v1/subscriptions/${pending.body.subscriptionId}/payment-method`, 'user-pending-wallet'))
        .status,
      409,
    );
  },
);

t.test(
  'a recovery link replaces the payment method without signing in; a bad one is 401, an ended one 409',
  async (t) => {
    // docs/api.md, recovery links.
    const bought = await buy('user-recover');
    await activate(bought.body.subscriptionId, bought.body.paymentId);
    const id = bought.body.subscriptionId as string;
    setupAnswer = async () => ({
      setupTokenId: `SETUP-${randomUUID().slice(0, 8)}`,
      status: 'PAYER_ACTION_REQUIRED',
      approvalUrl: 'http://paypal.test/agreements/approve?approval_session_id=R',
    });
    const recover = (token: string) => call('POST', '/v1/recovery/payment-method', undefined, { token });
    const good = recoveryToken(config.RECOVERY_LINK_SECRET!, id, new Date());
    const started = await recover(good);
    t.equal(started.status, 201);
    t.match(started.body.approvalUrl, /^http:\/\/paypal\.test\//);
    t.equal(
      (await db.selectFrom('payment_method_requests').selectAll().where('subscription_id', '=', id).execute()).length,
      1,
      'the request recorded for that subscription',
    );
    for (const bad of [
      recoveryToken('another-secret-of-at-least-32-characters!', id, new Date()),
      recoveryToken(config.RECOVERY_LINK_SECRET!, id, new Date(Date.now() - 8 * 86_400_000)),
      recoveryToken(config.RECOVERY_LINK_SECRET!, 'not-a-uuid', new Date()),
      recoveryToken(config.RECOVERY_LINK_SECRET!, randomUUID(), new Date()),
      'garbage',
    ]) {
      const r = await recover(bad);
      t.equal(r.status, 401, bad.slice(0, 20));
      t.equal(r.body.type, '/problems/unauthorized');
    }
    await call('POST', `/v1/subscriptions/${id}/cancel`, 'user-recover', { mode: 'immediately' });
    t.equal((await recover(good)).status, 409, 'a subscription that ended has no method to replace');
  },
);

t.test(
  'a coupon at checkout: the first payment discounted; an unknown or used-up one refused, nothing recorded',
  async (t) => {
    await db
      .insertInto('coupons')
      .values({
        code: 'TENOFF',
        percent_off: 10,
        amount_off: null,
        currency: null,
        duration_periods: 1,
        max_redemptions: 1,
        expires_at: null,
      })
      .execute();
    const first = await call('POST', '/v1/subscriptions', 'user-coupon-1', { planId: 'pro', couponCode: 'TENOFF' });
    t.equal(first.status, 201);
    t.equal((await pay(first.body.paymentId)).amount, 899, 'floor(999 × 90 / 100)');
    t.equal(created[created.length - 1]!.amount, 899, 'PayPal asked for the discounted price');
    const usedUp = await call('POST', '/v1/subscriptions', 'user-coupon-2', { planId: 'pro', couponCode: 'TENOFF' });
    t.equal(usedUp.body.type, '/problems/coupon-not-applicable');
    t.equal(await countOf('subscriptions', 'user-coupon-2'), 0, 'nothing recorded');
    t.equal(
      (await call('POST', '/v1/subscriptions', 'user-coupon-3', { planId: 'pro', couponCode: 'NOPE' })).status,
      422,
    );
  },
);

t.test(
  'checkouts with nothing to charge now (docs/api.md, free trials and coupons at checkout): a free trial and a free first period save the wallet at PayPal',
  async (t) => {
    await db
      .insertInto('plans')
      .values({
        id: 'tri',
        name: 'Tri',
        description: '',
        amount: 700,
        currency: 'USD',
        period: 'P1M',
        role: 'tri-role',
        active: true,
        trial_period: 'P14D',
      })
      .execute();
    await waitFor(async () => (await call('GET', '/v1/plans')).body.items.some((p: any) => p.id === 'tri'), {
      what: 'the trial plan on sale',
    });
    let token = '';
    setupAnswer = async () => {
      token = `SETUP-${randomUUID().slice(0, 8)}`;
      return {
        setupTokenId: token,
        status: 'PAYER_ACTION_REQUIRED',
        approvalUrl: `http://paypal.test/agreements/approve?approval_session_id=${token}`,
      };
    };
    const orders = created.length;
    const trial = await buy('user-tri', 'tri');
    t.equal(trial.status, 201);
    t.match(trial.body, { status: 'pending', paymentId: null, approvalUrl: token });
    t.match(await sub(trial.body.subscriptionId), { status: 'pending', trial_period: 'P14D', trial_start: null });
    t.equal(await countOf('payments', 'user-tri'), 0, 'no payment: nothing is charged now');
    t.equal(created.length, orders, 'no order at PayPal');
    const back = await call('GET', `/v1/checkout/vault-return?approval_token_id=${token}`);
    t.equal(back.headers.location, 'http://shop.test/home?x=1&checkout=success');
    t.equal((await outbox('payment.method.approved', (d) => d['setupTokenId'] === token)).length, 1);
    const redirected = await call('POST', '/v1/subscriptions?redirect=true', 'user-tri-redirect', { planId: 'tri' });
    t.equal(redirected.status, 303);
    t.match(redirected.headers.location, /agreements\/approve/);

    // In a trial: a second one for the role is refused; after it, the next checkout is a paid one.
    const now = new Date();
    await db
      .updateTable('subscriptions')
      .set({ status: 'trialing', trial_start: now, trial_end: new Date(now.getTime() + 86_400_000) })
      .where('id', '=', trial.body.subscriptionId)
      .execute();
    t.equal((await buy('user-tri', 'tri')).body.type, '/problems/already-subscribed');
    await db
      .updateTable('subscriptions')
      .set({ status: 'expired' })
      .where('id', '=', trial.body.subscriptionId)
      .execute();
    const paid = await buy('user-tri', 'tri');
    t.match(paid.body, { paymentId: /^[0-9a-f-]{36}$/, approvalUrl: /checkoutnow/ });
    t.equal((await sub(paid.body.subscriptionId)).trial_period, null, 'one trial per user and role');

    // The buyer gives up at PayPal: the trial checkout ends.
    const given = await buy('user-tri-gives-up', 'tri');
    const cancel = await call('GET', `/v1/checkout/vault-cancel?approval_token_id=${token}`);
    t.equal(cancel.headers.location, 'http://shop.test/home?x=1&checkout=cancelled');
    t.match(await sub(given.body.subscriptionId), { status: 'cancelled' });

    // A coupon that makes the first period free: a payment of 0 waits for the saved wallet.
    await db
      .insertInto('coupons')
      .values({
        code: 'FIRSTFREE',
        percent_off: 100,
        amount_off: null,
        currency: null,
        duration_periods: 1,
        max_redemptions: null,
        expires_at: null,
      })
      .execute();
    const free = await call('POST', '/v1/subscriptions', 'user-free-first', { planId: 'pro', couponCode: 'FIRSTFREE' });
    t.equal(free.status, 201);
    t.match(await pay(free.body.paymentId), { amount: 0, status: 'created', provider_order_id: null });
    t.equal(created.length, orders + 1, 'no order for it (the one order was the paid checkout above)');
    await call('GET', `/v1/checkout/vault-cancel?approval_token_id=${token}`);
    t.match(await pay(free.body.paymentId), { status: 'cancelled' });
    t.match(await sub(free.body.subscriptionId), { status: 'cancelled' });

    // PayPal refuses or is away when the wallet-saving starts: nothing charged, the checkout ends.
    setupAnswer = async () => {
      throw new ProviderRefusedError(422, 'UNPROCESSABLE_ENTITY', 'no');
    };
    const refused = await buy('user-tri-refused', 'tri');
    t.equal(refused.body.type, '/problems/payment-provider-refused');
    setupAnswer = async () => ({ setupTokenId: 'S-NOLINK', status: 'PAYER_ACTION_REQUIRED', approvalUrl: null });
    const away = await call('POST', '/v1/subscriptions', 'user-free-away', { planId: 'pro', couponCode: 'FIRSTFREE' });
    t.equal(away.body.type, '/problems/payment-provider-unavailable');
    const ended = await db
      .selectFrom('subscriptions')
      .select('status')
      .where('user_id', 'in', ['user-tri-refused', 'user-free-away'])
      .execute();
    t.same(
      ended.map((s) => s.status),
      ['cancelled', 'cancelled'],
    );
    t.match(
      await db.selectFrom('payments').selectAll().where('user_id', '=', 'user-free-away').executeTakeFirstOrThrow(),
      { status: 'failed', amount: 0 },
    );
  },
);

t.test('at most 10 payment-method replacements a minute per user, then 429 with Retry-After', async (t) => {
  const user = 'user-wallet-flood';
  const bought = await buy(user);
  await activate(bought.body.subscriptionId, bought.body.paymentId);
  let asked = 0;
  setupAnswer = async () => {
    asked += 1;
    const token = `SETUP-${randomUUID().slice(0, 8)}`;
    return {
      setupTokenId: token,
      status: 'PAYER_ACTION_REQUIRED',
      approvalUrl: `http://paypal.test/agreements/approve?approval_session_id=${token}`,
    };
  };
  const path = `/v1/subscriptions/${bought.body.subscriptionId}/payment-method`;
  for (let i = 0; i < 10; i++) t.equal((await call('POST', path, user)).status, 201);
  const over = await call('POST', path, user);
  t.equal(over.status, 429);
  t.equal(over.body.type, '/problems/rate-limited');
  t.ok(Number(over.headers['retry-after']) > 0, 'with Retry-After');
  t.equal(asked, 10, 'PayPal was asked for 10 setup tokens, not 11');
  const rows = await db
    .selectFrom('payment_method_requests')
    .select('id')
    .where('subscription_id', '=', bought.body.subscriptionId)
    .execute();
  t.equal(rows.length, 10, 'and 10 rows were written');
});

t.test('a coupon is redeemed once per user by default: re-subscribing after the first ended is refused', async (t) => {
  await db
    .insertInto('coupons')
    .values({ code: 'WELCOME', percent_off: 50, duration_periods: 1, max_redemptions: null })
    .execute();
  const user = 'user-coupon-again';
  const first = await call('POST', '/v1/subscriptions', user, { planId: 'pro', couponCode: 'WELCOME' });
  t.equal(first.status, 201);
  await activate(first.body.subscriptionId, first.body.paymentId);
  // The first subscription ends (expired after its period), the buyer checks out again with the code.
  await db
    .updateTable('subscriptions')
    .set({ status: 'expired', expired_at: new Date() })
    .where('id', '=', first.body.subscriptionId)
    .execute();
  const again = await call('POST', '/v1/subscriptions', user, { planId: 'pro', couponCode: 'WELCOME' });
  t.equal(again.status, 422, 'the first-period discount is not had twice');
  t.equal(again.body.type, '/problems/coupon-not-applicable');
  t.equal(await countOf('subscriptions', user), 1, 'nothing recorded');
  // Another user still can; a coupon allowing 2 per user allows a second.
  t.equal(
    (await call('POST', '/v1/subscriptions', 'user-coupon-other', { planId: 'pro', couponCode: 'WELCOME' })).status,
    201,
  );
  await db
    .insertInto('coupons')
    .values({ code: 'TWICE', percent_off: 10, max_redemptions_per_user: 2 } as never)
    .execute();
  const a = await call('POST', '/v1/subscriptions', 'user-coupon-twice', { planId: 'pro', couponCode: 'TWICE' });
  await activate(a.body.subscriptionId, a.body.paymentId);
  await db
    .updateTable('subscriptions')
    .set({ status: 'expired', expired_at: new Date() })
    .where('id', '=', a.body.subscriptionId)
    .execute();
  t.equal(
    (await call('POST', '/v1/subscriptions', 'user-coupon-twice', { planId: 'pro', couponCode: 'TWICE' })).status,
    201,
  );
});

t.test('pause and resume (docs/api.md): the refusals with their codes, the body, the answer', async (t) => {
  const { body } = await buy('u-pause');
  const id = body.subscriptionId as string;
  t.match(await call('POST', `/v1/subscriptions/${id}/pause`, 'u-pause'), {
    status: 409,
    body: { type: '/problems/not-pausable', detail: /pending subscription/ },
  });
  await activate(id, body.paymentId);
  t.match(await call('POST', `/v1/subscriptions/${id}/pause`, 'u-pause', { resumesAt: 'tomorrow' }), { status: 400 });
  t.match(
    await call('POST', `/v1/subscriptions/${id}/pause`, 'u-pause', {
      resumesAt: new Date(Date.now() - 1000).toISOString(),
    }),
    { status: 400, body: { type: '/problems/validation' } },
  );
  t.match(
    await call('POST', `/v1/subscriptions/${id}/pause`, 'u-pause', {
      resumesAt: new Date(Date.now() + 200 * 86_400_000).toISOString(),
    }),
    { status: 422, body: { type: '/problems/pause-too-long', detail: /at most P3M/ } },
  );
  t.equal((await call('POST', `/v1/subscriptions/${id}/pause`, 'u-other')).status, 404, "another user's: 404");
  const resumesAt = new Date(Date.now() + 5 * 86_400_000).toISOString();
  const paused = await call('POST', `/v1/subscriptions/${id}/pause`, 'u-pause', { resumesAt });
  t.match(paused, { status: 200, body: { status: 'paused', resumesAt, cancelledAt: null } });
  t.ok(paused.body.pausedAt);
  t.match(await call('POST', `/v1/subscriptions/${id}/pause`, 'u-pause'), {
    status: 409,
    body: { detail: /paused already/ },
  });
  t.match(await buy('u-pause'), { status: 409, body: { type: '/problems/already-subscribed', detail: /paused/ } });
  t.match(await call('GET', `/v1/subscriptions/${id}`, 'u-pause'), { body: { status: 'paused', resumesAt } });
  t.match(await call('POST', `/v1/subscriptions/${id}/resume`, 'u-pause'), {
    status: 200,
    body: { status: 'active', pausedAt: null, resumesAt: null },
  });
  t.match((await outbox('subscription.resumed', (d) => d['subscriptionId'] === id))[0], { planId: 'pro' });
});

t.test('the retention offer (docs/api.md): none without a coupon set, made once, accepted once', async (t) => {
  const { body } = await buy('u-stay');
  const id = body.subscriptionId as string;
  await activate(id, body.paymentId);
  t.same((await call('POST', `/v1/subscriptions/${id}/retention-offer`, 'u-stay')).body, { offer: null });
  t.match(await call('POST', `/v1/subscriptions/${id}/retention-offer/accept`, 'u-stay'), {
    status: 409,
    body: { type: '/problems/offer-not-available' },
  });
  await db
    .insertInto('coupons')
    .values({ code: 'STAY', percent_off: 20, duration_periods: 3, retention_offer: true })
    .execute();
  const made = await call('POST', `/v1/subscriptions/${id}/retention-offer`, 'u-stay');
  t.match(made, {
    status: 200,
    body: { offer: { couponCode: 'STAY', percentOff: 20, durationPeriods: 3, price: 799 } },
  });
  t.same((await call('POST', `/v1/subscriptions/${id}/retention-offer`, 'u-stay')).body, { offer: null }, 'once');
  t.match(await call('POST', `/v1/subscriptions/${id}/retention-offer/accept`, 'u-stay'), {
    status: 200,
    body: { status: 'active' },
  });
  t.equal((await call('POST', `/v1/subscriptions/${id}/retention-offer/accept`, 'u-stay')).status, 409);
  t.equal((await call('POST', `/v1/subscriptions/${id}/retention-offer`, 'u-nobody')).status, 404);
});

t.test(
  "a cancel that deadlocks with the payment-worker's lock order (its payment, then its subscription) is run again, not a 500",
  async (t) => {
    const { body } = await buy('u-deadlock');
    await activate(body.subscriptionId, body.paymentId, 10 * 86_400_000);
    // The payment-worker's window, by hand: its payments locked first, in a transaction of its own.
    const pg = await import('pg');
    const worker = new pg.default.Client({ connectionString: tdb.url });
    await worker.connect();
    t.teardown(() => worker.end());
    // Its own deadlock check waits longer than the cancel's: the cancel is the one Postgres ends.
    await worker.query(`set deadlock_timeout = '20s'`);
    await worker.query('begin');
    await worker.query('select id from payments where id = $1 for update', [body.paymentId]);
    // The cancel locks the subscription, then waits for the payment.
    const cancel = call('POST', `/v1/subscriptions/${body.subscriptionId}/cancel`, 'u-deadlock', {
      mode: 'immediately',
    });
    await waitFor(
      async () =>
        (
          await sql<{ n: string }>`select count(*) as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query like '%from "payments"%'`.execute(
            db,
          )
        ).rows[0]!.n !== '0',
      { what: 'the cancel waiting for the payment' },
    );
    // The worker now wants the subscription: a deadlock. Postgres ends the transaction that waited
    // first, the cancel's; it must be run again, once the worker's commits.
    const workerDone = worker
      .query('select id from subscriptions where id = $1 for update', [body.subscriptionId])
      .then(() => worker.query('commit'));
    const answer = await cancel;
    await workerDone;
    t.equal(answer.status, 200, `the cancel answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    t.match(answer.body, { status: 'cancelled' });
    t.equal((await sub(body.subscriptionId)).status, 'cancelled');
    t.equal(
      (await outbox('subscription.cancelled', (d) => d['subscriptionId'] === body.subscriptionId)).length,
      1,
      'cancelled once',
    );
  },
);
