import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { signJwt } from '@billing/auth-stand-in';
import { appEnv, freePort, spawnTs, waitFor, waitForHttp } from '@billing/testing';
import { openApiChecker } from '../src/openapi.js';
import { startStack } from '../src/stack.js';

const stack = await startStack();
t.teardown(() => stack.stop());
const API = stack.urls['billing-api'];
const spec = await openApiChecker(API);

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}
async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; base?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...opts.headers,
  };
  const res = await fetch(`${opts.base ?? API}${path}`, {
    method,
    headers,
    redirect: 'manual',
    body: opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : null),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers };
}
/** A call whose answer must be documented in the OpenAPI document. */
async function documented(method: string, path: string, opts: Parameters<typeof call>[2] = {}): Promise<Answer> {
  const a = await call(method, path, opts);
  spec.check(method, path, a.status, a.status === 303 ? null : a.body);
  return a;
}
const counts = async () => {
  const one = async (table: 'subscriptions' | 'payments' | 'idempotency_keys' | 'refunds') =>
    Number(
      (
        await stack.tdb.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    subscriptions: await one('subscriptions'),
    payments: await one('payments'),
    keys: await one('idempotency_keys'),
    refunds: await one('refunds'),
  };
};
const orderOf = (approvalUrl: string) => new URL(approvalUrl).searchParams.get('token')!;
const activate = async (token: string, planId = 'pro-monthly') => {
  const created = await call('POST', '/v1/subscriptions', { token, body: { planId } });
  await stack.paypal(`/_control/orders/${orderOf(created.body.approvalUrl)}/approve`, {});
  await waitFor(
    async () =>
      (
        await stack.tdb.db
          .selectFrom('subscriptions')
          .select('status')
          .where('id', '=', created.body.subscriptionId)
          .executeTakeFirstOrThrow()
      ).status === 'active',
    { what: 'activation', timeoutMs: 20_000 },
  );
  return created.body as { subscriptionId: string; paymentId: string };
};
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];

t.test('the OpenAPI document covers every route of docs/api.md; /docs serves the UI', async (t) => {
  const paths = Object.keys(spec.doc.paths);
  for (const p of [
    '/v1/plans',
    '/v1/subscriptions',
    '/v1/subscriptions/{id}',
    '/v1/subscriptions/{id}/cancel',
    '/v1/subscriptions/{id}/resume',
    '/v1/payments',
    '/v1/payments/{id}',
    '/v1/checkout/return',
    '/v1/checkout/cancel',
  ]) {
    t.ok(paths.includes(p), `${p} documented`);
  }
  const ui = await fetch(`${API}/docs`);
  t.equal(ui.status, 200);
  t.match(await ui.text(), /swagger/i);
});

t.test('every endpoint: success and error statuses, documented and as documented', async (t) => {
  const tok = await stack.tokenFor('user-api');
  const other = await stack.tokenFor('user-api-other');
  t.equal((await documented('GET', '/v1/plans')).status, 200);
  t.equal((await documented('GET', '/v1/subscriptions')).status, 401);
  t.equal(
    (await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'no-such-plan' } })).status,
    404,
  );
  const created = await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } });
  t.equal(created.status, 201);
  const redirect = await documented('POST', '/v1/subscriptions?redirect=true', {
    token: tok,
    body: { planId: 'team-monthly' },
  });
  t.equal(redirect.status, 303);
  t.match(redirect.headers.get('location'), /checkoutnow\?token=/);
  const replaced = await documented('GET', `/v1/subscriptions/${created.body.subscriptionId}`, { token: tok });
  t.equal(replaced.body.status, 'pending');
  await stack.paypal(`/_control/behaviour`, { webhookMode: 'hold' });
  await stack.paypal(`/_control/orders/${orderOf(created.body.approvalUrl)}/approve`, {});
  await stack.tdb.db
    .updateTable('payments')
    .set({ status: 'approved' })
    .where('id', '=', created.body.paymentId)
    .execute();
  t.equal(
    (await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } })).status,
    409,
    'checkout-in-progress',
  );
  await stack.paypal(`/_control/behaviour`, { webhookMode: 'deliver' });
  await stack.paypal('/_control/webhooks/release', { order: 'forward' });
  await waitFor(
    async () =>
      (await call('GET', `/v1/subscriptions/${created.body.subscriptionId}`, { token: tok })).body.status === 'active',
    { what: 'activation', timeoutMs: 20_000 },
  );
  const again = await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } });
  t.equal(again.status, 409);
  t.equal(again.body.type, '/problems/already-subscribed');
  const list = await documented('GET', '/v1/subscriptions?limit=1', { token: tok });
  t.equal(list.status, 200);
  t.equal(list.body.items.length, 1);
  t.ok(list.body.nextCursor);
  const page2 = await documented('GET', `/v1/subscriptions?limit=1&cursor=${list.body.nextCursor}`, { token: tok });
  t.not(page2.body.items[0].id, list.body.items[0].id, 'the next page goes on');
  t.equal((await documented('GET', '/v1/subscriptions?limit=0', { token: tok })).status, 400);
  t.equal((await documented('GET', '/v1/subscriptions?limit=101', { token: tok })).status, 400);
  t.equal(
    (await documented('GET', `/v1/subscriptions/${created.body.subscriptionId}`, { token: other })).status,
    404,
    "another user's subscription",
  );
  t.equal((await documented('GET', '/v1/subscriptions/not-a-uuid', { token: tok })).status, 404);
  const payments = await documented('GET', '/v1/payments', { token: tok });
  t.equal(payments.status, 200);
  t.ok(payments.body.items.length >= 2);
  const p = await documented('GET', `/v1/payments/${created.body.paymentId}`, { token: tok });
  t.match(p.body, { status: 'completed', refundedAmount: 0, kind: 'initial', amount: 999, currency: 'USD' });
  t.equal((await documented('GET', `/v1/payments/${created.body.paymentId}`, { token: other })).status, 404);
  t.equal(
    (await documented('POST', `/v1/subscriptions/${created.body.subscriptionId}/resume`, { token: tok })).status,
    200,
    'resume when not cancelling changes nothing',
  );
  t.equal(
    (await documented('POST', `/v1/subscriptions/${created.body.subscriptionId}/cancel`, { token: other })).status,
    404,
  );
  const ret = await documented('GET', '/v1/checkout/return?token=UNKNOWN');
  t.equal(ret.status, 303);
  t.equal(ret.headers.get('location'), 'http://shop.example/home?checkout=success');
  const cancelUnknown = await documented('GET', '/v1/checkout/cancel?token=UNKNOWN');
  t.equal(cancelUnknown.headers.get('location'), 'http://shop.example/home?checkout=cancelled');
  const pending = await call('POST', '/v1/subscriptions', { token: other, body: { planId: 'yen-monthly' } });
  const gaveUp = await documented('GET', `/v1/checkout/cancel?token=${orderOf(pending.body.approvalUrl)}`);
  t.equal(gaveUp.status, 303);
  t.equal((await call('GET', `/v1/payments/${pending.body.paymentId}`, { token: other })).body.status, 'cancelled');
  t.equal(
    (await call('GET', `/v1/subscriptions/${pending.body.subscriptionId}`, { token: other })).body.status,
    'cancelled',
  );
});

t.test('PayPal failing or refusing: 502, payment failed, subscription cancelled, the user can buy again', async (t) => {
  const tok = await stack.tokenFor('user-ppfail');
  await stack.paypal('/_control/behaviour', {
    failures: [{ match: 'POST /v2/checkout/orders', status: 503, count: 3 }],
  });
  const down = await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } });
  t.equal(down.status, 502);
  t.equal(down.body.type, '/problems/payment-provider-unavailable');
  await stack.paypal('/_control/behaviour', {
    failures: [{ match: 'POST /v2/checkout/orders', status: 400, count: 1 }],
  });
  const refused = await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } });
  t.equal(refused.status, 502);
  t.equal(refused.body.type, '/problems/payment-provider-refused');
  const subs = (await call('GET', '/v1/subscriptions', { token: tok })).body.items;
  t.same(
    subs.map((s: any) => s.status),
    ['cancelled', 'cancelled'],
  );
  const pays = (await call('GET', '/v1/payments', { token: tok })).body.items;
  t.same(
    pays.map((p: any) => [p.status, p.failureReason]),
    [
      ['failed', 'provider_error'],
      ['failed', 'provider_error'],
    ],
  );
  await stack.paypal('/_control/behaviour', { failures: [] });
  t.equal((await call('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } })).status, 201);
});

t.test('the Auth service unreachable at checkout: 503 with Retry-After, nothing recorded', async (t) => {
  const tok = await stack.tokenFor('user-authcheck');
  const before = await counts();
  await stack.auth('/_control/unavailable', { forMs: 1500 });
  const res = await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } });
  t.equal(res.status, 503);
  t.equal(res.body.type, '/problems/auth-service-unavailable');
  t.ok(Number(res.headers.get('retry-after')) > 0);
  t.same(await counts(), before);
  await new Promise((r) => setTimeout(r, 1600));
});

t.test(
  'Idempotency-Key: 20 concurrent requests, one payment and one order; another body 422; another user their own',
  async (t) => {
    const tok = await stack.tokenFor('user-idem');
    const key = 'checkout-7f3a-2026';
    const calls = () =>
      stack.paypal('/_control/calls').then((c: any[]) => c.filter((x) => x.path === '/v2/checkout/orders').length);
    const ordersBefore = await calls();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        call('POST', '/v1/subscriptions', {
          token: tok,
          body: { planId: 'pro-monthly' },
          headers: { 'idempotency-key': key },
        }),
      ),
    );
    const ok = answers.filter((a) => a.status === 201);
    t.ok(ok.length >= 1, `${ok.length} answered 201`);
    t.ok(
      answers.every((a) => a.status === 201 || a.status === 409),
      `statuses: ${[...new Set(answers.map((a) => a.status))].join(',')}`,
    );
    t.ok(answers.filter((a) => a.status === 409).every((a) => a.body.type === '/problems/idempotency-key-in-flight'));
    t.equal(new Set(ok.map((a) => JSON.stringify(a.body))).size, 1, 'every 201 is the same answer');
    const replay = await documented('POST', '/v1/subscriptions', {
      token: tok,
      body: { planId: 'pro-monthly' },
      headers: { 'idempotency-key': key },
    });
    t.same(replay.body, ok[0]!.body, 'a later replay gets the first answer');
    t.equal(replay.status, 201);
    const mine = await stack.tdb.db.selectFrom('payments').select('id').where('user_id', '=', 'user-idem').execute();
    t.equal(mine.length, 1, 'one payment');
    t.equal((await calls()) - ordersBefore, 1, 'one PayPal order');
    const reused = await documented('POST', '/v1/subscriptions', {
      token: tok,
      body: { planId: 'team-monthly' },
      headers: { 'idempotency-key': key },
    });
    t.equal(reused.status, 422);
    t.equal(reused.body.type, '/problems/idempotency-key-reused');
    const otherTok = await stack.tokenFor('user-idem-2');
    const other = await call('POST', '/v1/subscriptions', {
      token: otherTok,
      body: { planId: 'pro-monthly' },
      headers: { 'idempotency-key': key },
    });
    t.equal(other.status, 201);
    t.not(other.body.paymentId, ok[0]!.body.paymentId, 'another user with the same key gets a payment of their own');
    const notFound = await call('POST', '/v1/subscriptions', {
      token: tok,
      body: { planId: 'missing-plan' },
      headers: { 'idempotency-key': 'k-404' },
    });
    t.equal(notFound.status, 404);
    const notFoundAgain = await call('POST', '/v1/subscriptions', {
      token: tok,
      body: { planId: 'missing-plan' },
      headers: { 'idempotency-key': 'k-404' },
    });
    t.same(notFoundAgain.body, notFound.body, 'a 4xx answer is replayed too');
  },
);

t.test(
  'cancel immediately refunds exactly the formula at PayPal, revokes the role; again refunds nothing; at period end keeps the role; resume undoes it',
  async (t) => {
    const tok = await stack.tokenFor('user-cancel');
    const { subscriptionId, paymentId } = await activate(tok);
    await waitFor(async () => (await rolesOf('user-cancel')).includes('premium'), {
      what: 'the role',
      timeoutMs: 20_000,
    });
    const atEnd = await documented('POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      token: tok,
      body: { mode: 'at_period_end' },
    });
    t.match(atEnd.body, { status: 'active', cancelAtPeriodEnd: true, cancelledAt: null });
    await stack.quiet();
    t.ok((await rolesOf('user-cancel')).includes('premium'), 'the role stays until the period ends');
    const resumed = await documented('POST', `/v1/subscriptions/${subscriptionId}/resume`, { token: tok });
    t.match(resumed.body, { status: 'active', cancelAtPeriodEnd: false });
    const pay = await stack.tdb.db
      .selectFrom('payments')
      .selectAll()
      .where('id', '=', paymentId)
      .executeTakeFirstOrThrow();
    const cancelled = await documented('POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      token: tok,
      body: { mode: 'immediately' },
    });
    t.match(cancelled.body, { status: 'cancelled' });
    const at = new Date(cancelled.body.cancelledAt).getTime();
    const s = pay.period_start!.getTime();
    const e = pay.period_end!.getTime();
    const expected = Number((BigInt(pay.amount) * BigInt(e - Math.max(s, at))) / BigInt(e - s));
    t.ok(expected > 0 && expected < pay.amount);
    const refundCall = await waitFor(
      async () =>
        (await stack.paypal('/_control/calls')).find(
          (c: any) => c.path === `/v2/payments/captures/${pay.provider_capture_id}/refund`,
        ),
      { what: 'the refund at PayPal', timeoutMs: 20_000 },
    );
    t.equal(
      refundCall.body.amount.value,
      (expected / 100).toFixed(2),
      `PayPal refunded exactly ${expected} minor units`,
    );
    await waitFor(async () => !(await rolesOf('user-cancel')).includes('premium'), {
      what: 'the role revoked',
      timeoutMs: 20_000,
    });
    const view = await waitFor(
      async () => {
        const p = (await call('GET', `/v1/payments/${paymentId}`, { token: tok })).body;
        return p.status === 'partially_refunded' ? p : null;
      },
      { what: 'the refund on the payment', timeoutMs: 20_000 },
    );
    t.equal(view.refundedAmount, expected);
    const second = await documented('POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      token: tok,
      body: { mode: 'immediately' },
    });
    t.equal(second.status, 200);
    t.equal(second.body.cancelledAt, cancelled.body.cancelledAt, 'a second cancel changes nothing');
    await stack.quiet();
    const refunds = await stack.tdb.db.selectFrom('refunds').selectAll().where('payment_id', '=', paymentId).execute();
    t.equal(refunds.length, 1, 'and refunds nothing more');
    t.equal(
      (await documented('POST', `/v1/subscriptions/${subscriptionId}/resume`, { token: tok })).status,
      409,
      'a cancelled one cannot resume',
    );
  },
);

t.test('rate limit: 10 accepted checkouts per user per minute, then 429 with Retry-After', async (t) => {
  const tok = await stack.tokenFor('user-rate');
  for (let i = 0; i < 10; i++)
    t.equal((await call('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } })).status, 201);
  const limited = await documented('POST', '/v1/subscriptions', { token: tok, body: { planId: 'pro-monthly' } });
  t.equal(limited.status, 429);
  t.ok(Number(limited.headers.get('retry-after')) >= 1);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Answer = await documented('GET', `/v1/subscriptions?limit=3${cursor ? `&cursor=${cursor}` : ''}`, {
      token: tok,
    });
    seen.push(...page.body.items.map((s: any) => s.id));
    cursor = page.body.nextCursor;
  } while (cursor);
  t.equal(new Set(seen).size, 10, 'walking the pages yields each of the 10 subscriptions once, newest first');
  t.equal(seen.length, 10);
  const otherTok = await stack.tokenFor('user-rate-2');
  t.equal(
    (await call('POST', '/v1/subscriptions', { token: otherTok, body: { planId: 'pro-monthly' } })).status,
    201,
    'other users are not limited',
  );
});

t.test(
  'bad input, through the real app: the documented status, nothing new stored, the app keeps serving',
  async (t) => {
    const tok = await stack.tokenFor('user-bad');
    const otherSub = (await call('GET', '/v1/subscriptions', { token: await stack.tokenFor('user-api') })).body.items[0]
      .id;
    const secret = stack.jwtSecret;
    const now = Math.floor(Date.now() / 1000);
    const hs = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      signJwt(claims, { alg: 'HS256', secret }, header);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'user-bad', exp: now + 600 })}.`;
    const good = hs({ sub: 'user-bad', roles: ['user'], iat: now, exp: now + 600 });
    const tampered = `${good.split('.')[0]}.${b64({ sub: 'user-api', roles: ['admin'], iat: now, exp: now + 600 })}.${good.split('.')[2]}`;
    const post = (opts: Parameters<typeof call>[2]) => ['POST', '/v1/subscriptions', opts] as const;
    const cases: [string, readonly [string, string, Parameters<typeof call>[2]], number][] = [
      [
        'malformed JSON',
        post({ token: tok, raw: '{"planId": ', headers: { 'content-type': 'application/json' } }),
        400,
      ],
      [
        'truncated JSON',
        post({ token: tok, raw: '{"planId":"pro-mon', headers: { 'content-type': 'application/json' } }),
        400,
      ],
      [
        'JSON array',
        post({ token: tok, raw: '["pro-monthly"]', headers: { 'content-type': 'application/json' } }),
        400,
      ],
      ['JSON string', post({ token: tok, raw: '"pro-monthly"', headers: { 'content-type': 'application/json' } }), 400],
      ['JSON null', post({ token: tok, raw: 'null', headers: { 'content-type': 'application/json' } }), 400],
      [
        'empty body with JSON type',
        post({ token: tok, raw: '', headers: { 'content-type': 'application/json' } }),
        400,
      ],
      [
        '__proto__ key',
        post({
          token: tok,
          raw: '{"planId":"pro-monthly","__proto__":{"admin":true}}',
          headers: { 'content-type': 'application/json' },
        }),
        400,
      ],
      [
        'constructor key',
        post({
          token: tok,
          raw: '{"planId":"pro-monthly","constructor":{"prototype":{"x":1}}}',
          headers: { 'content-type': 'application/json' },
        }),
        400,
      ],
      [
        'deep nesting',
        post({
          token: tok,
          raw: `{"planId":"pro-monthly","x":${'['.repeat(5000)}${']'.repeat(5000)}}`,
          headers: { 'content-type': 'application/json' },
        }),
        400,
      ],
      [
        'body over 16 KiB',
        post({
          token: tok,
          raw: JSON.stringify({ planId: 'pro-monthly', pad: 'x'.repeat(17 * 1024) }),
          headers: { 'content-type': 'application/json' },
        }),
        413,
      ],
      [
        'text/plain',
        post({ token: tok, raw: '{"planId":"pro-monthly"}', headers: { 'content-type': 'text/plain' } }),
        415,
      ],
      [
        'form-encoded',
        post({
          token: tok,
          raw: 'planId=pro-monthly',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
        415,
      ],
      [
        'XML',
        post({ token: tok, raw: '<planId>pro-monthly</planId>', headers: { 'content-type': 'application/xml' } }),
        415,
      ],
      ['NUL byte in planId', post({ token: tok, body: { planId: 'pro-monthly\u0000' } }), 400],
      [
        'lone surrogate in planId',
        post({ token: tok, raw: '{"planId":"pro-\\ud800monthly"}', headers: { 'content-type': 'application/json' } }),
        400,
      ],
      ['unknown property', post({ token: tok, body: { planId: 'pro-monthly', discount: 100 } }), 400],
      ['missing planId', post({ token: tok, body: {} }), 400],
      ['planId as a number', post({ token: tok, body: { planId: 12 } }), 400],
      ['planId as an array', post({ token: tok, body: { planId: ['pro-monthly'] } }), 400],
      ['planId as null', post({ token: tok, body: { planId: null } }), 400],
      ['planId with capitals', post({ token: tok, body: { planId: 'Pro-Monthly' } }), 400],
      ['planId too long', post({ token: tok, body: { planId: 'a'.repeat(65) } }), 400],
      ['planId with a path', post({ token: tok, body: { planId: '../etc/passwd' } }), 400],
      ['unknown plan id', post({ token: tok, body: { planId: 'gold-forever' } }), 404],
      [
        'cancel mode unknown',
        ['POST', `/v1/subscriptions/${otherSub}/cancel`, { token: tok, body: { mode: 'now' } }],
        400,
      ],
      [
        'cancel mode as a number',
        ['POST', `/v1/subscriptions/${otherSub}/cancel`, { token: tok, body: { mode: 1 } }],
        400,
      ],
      ['limit as text', ['GET', '/v1/payments?limit=ten', { token: tok }], 400],
      ['negative limit', ['GET', '/v1/payments?limit=-1', { token: tok }], 400],
      ['fractional limit', ['GET', '/v1/payments?limit=1.5', { token: tok }], 400],
      ['forged cursor', ['GET', '/v1/payments?cursor=bm90LWEtY3Vyc29y', { token: tok }], 400],
      ['no token', post({ body: { planId: 'pro-monthly' } }), 401],
      ['alg none', post({ token: none, body: { planId: 'pro-monthly' } }), 401],
      [
        'expired token',
        post({ token: hs({ sub: 'user-bad', iat: now - 7200, exp: now - 3600 }), body: { planId: 'pro-monthly' } }),
        401,
      ],
      ['no exp', post({ token: hs({ sub: 'user-bad', iat: now }), body: { planId: 'pro-monthly' } }), 401],
      [
        'future nbf',
        post({
          token: hs({ sub: 'user-bad', iat: now, nbf: now + 3600, exp: now + 7200 }),
          body: { planId: 'pro-monthly' },
        }),
        401,
      ],
      [
        'wrong signature',
        post({
          token: signJwt({ sub: 'user-bad', iat: now, exp: now + 600 }, { alg: 'HS256', secret: 'not-the-secret' }),
          body: { planId: 'pro-monthly' },
        }),
        401,
      ],
      ['tampered payload', post({ token: tampered, body: { planId: 'pro-monthly' } }), 401],
      ['token without sub', post({ token: hs({ iat: now, exp: now + 600 }), body: { planId: 'pro-monthly' } }), 401],
      [
        'oversized token',
        post({
          token: hs({ sub: 'user-bad', iat: now, exp: now + 600, pad: 'x'.repeat(9000) }),
          body: { planId: 'pro-monthly' },
        }),
        401,
      ],
      ['token in the query string only', post({ body: { planId: 'pro-monthly' } }), 401],
      [
        'Basic instead of Bearer',
        post({ headers: { authorization: 'Basic dXNlcjpwYXNz' }, body: { planId: 'pro-monthly' } }),
        401,
      ],
      ["another user's subscription", ['GET', `/v1/subscriptions/${otherSub}`, { token: tok }], 404],
      ["cancel another user's subscription", ['POST', `/v1/subscriptions/${otherSub}/cancel`, { token: tok }], 404],
      ['malformed subscription id', ['GET', "/v1/subscriptions/1' or '1'='1", { token: tok }], 404],
      ['malformed payment id', ['GET', '/v1/payments/12345', { token: tok }], 404],
      [
        '10 KiB idempotency key',
        post({ token: tok, body: { planId: 'pro-monthly' }, headers: { 'idempotency-key': 'k'.repeat(10 * 1024) } }),
        400,
      ],
      [
        'idempotency key with a control character',
        post({ token: tok, body: { planId: 'pro-monthly' }, headers: { 'idempotency-key': 'a\tb' } }),
        400,
      ],
      [
        'headers over 16 KiB',
        post({ token: tok, body: { planId: 'pro-monthly' }, headers: { 'x-junk': 'j'.repeat(17 * 1024) } }),
        431,
      ],
    ];
    t.ok(cases.length >= 40, `${cases.length} cases`);
    const before = await counts();
    for (const [name, [method, path, opts], status] of cases) {
      const url = name === 'token in the query string only' ? `${path}?access_token=${good}` : path;
      const res = await call(method, url, opts);
      t.equal(res.status, status, `${name}: ${status}`);
      if (status !== 431) {
        t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8', `${name}: problem+json`);
        t.equal(typeof res.body?.detail, 'string', `${name}: a detail`);
        t.notOk(JSON.stringify(res.body).includes('at '), `${name}: no stack trace`);
      }
    }
    t.same(await counts(), before, 'nothing new in the database');
    t.equal((await call('GET', '/v1/plans')).status, 200, 'the app keeps serving');
  },
);

t.test('RS256 with issuer and audience: key confusion, wrong audience or issuer, alg none are 401', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const port = await freePort();
  const rs = spawnTs(
    'apps/billing-api/src/main.ts',
    appEnv({
      DATABASE_URL: stack.tdb.url,
      AMQP_URL: stack.vhost.url,
      PORT: String(port),
      JWT_SECRET: '',
      JWT_PUBLIC_KEY: publicKey,
      JWT_ISSUER: 'https://auth.example',
      JWT_AUDIENCE: 'billing',
      AUTH_SERVICE_URL: stack.urls.auth,
      AUTH_SERVICE_TOKEN: stack.serviceToken,
      PAYPAL_API_BASE: stack.urls.paypal,
      PAYPAL_CLIENT_ID: 'e2e-client',
      PAYPAL_CLIENT_SECRET: 'e2e-client-secret-91aa',
    }),
  );
  t.teardown(() => rs.stop());
  await waitForHttp(`http://127.0.0.1:${port}/health/ready`).catch((e: Error) => {
    throw new Error(`${e.message}\n${rs.output()}`);
  });
  const base = `http://127.0.0.1:${port}`;
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: 'user-alice',
    roles: ['user'],
    iat: now,
    exp: now + 600,
    iss: 'https://auth.example',
    aud: 'billing',
  };
  const rsToken = (c: Record<string, unknown>) => signJwt(c, { alg: 'RS256', privateKey });
  t.equal((await call('GET', '/v1/subscriptions', { base, token: rsToken(claims) })).status, 200, 'a good RS256 token');
  t.equal(
    (await call('GET', '/v1/subscriptions', { base, token: rsToken({ ...claims, exp: now - 30 }) })).status,
    200,
    '30 s past exp is within the 60 s skew',
  );
  t.equal(
    (await call('GET', '/v1/subscriptions', { base, token: signJwt(claims, { alg: 'HS256', secret: publicKey }) }))
      .status,
    401,
    'HS256 signed with the RS256 public key',
  );
  t.equal(
    (await call('GET', '/v1/subscriptions', { base, token: rsToken({ ...claims, aud: 'other' }) })).status,
    401,
    'wrong audience',
  );
  t.equal(
    (await call('GET', '/v1/subscriptions', { base, token: rsToken({ ...claims, iss: 'https://evil.example' }) }))
      .status,
    401,
    'wrong issuer',
  );
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  t.equal(
    (await call('GET', '/v1/subscriptions', { base, token: `${b64({ alg: 'none' })}.${b64(claims)}.` })).status,
    401,
    'alg none',
  );
});
