import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { AuthClient } from '@billing/auth-client';
import { payments, subscriptions } from '@billing/billing-core';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { createRuntime } from '@billing/runtime';
import { createTestVhost, hs256Token } from '@billing/testing';
import { buildApp } from '../src/app.js';
import { loadPortalConfig } from '../src/config.js';

// Hostile inputs against the admin API and pages in-process (app.inject) on a real database:
// each gets a clear 4xx, nothing is stored or changed (audit log, refunds, grants, plans,
// subscriptions), and the portal goes on serving; free text is rendered back escaped.
const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
const secret = 'portal-hostile-test-secret-0123456789';
const config = loadPortalConfig({
  DATABASE_URL: tdb.url,
  AMQP_URL: vhost.url,
  JWT_SECRET: secret,
  AUTH_SERVICE_URL: 'http://127.0.0.1:9',
  AUTH_SERVICE_TOKEN: 'svc',
  LOG_LEVEL: 'error',
});
const rt = createRuntime('portal-hostile-test', config);
class FakeAuth extends AuthClient {
  override async getRoles() {
    return ['user'];
  }
}
const app = await buildApp({ rt, config, auth: new FakeAuth({ baseUrl: 'http://127.0.0.1:9', serviceToken: 'svc' }) });
t.teardown(async () => {
  await app.close();
  await rt.close();
  await tdb.drop();
  await vhost.drop();
});
const db = tdb.db;
await importCatalog(db, [
  {
    id: 'pro',
    name: 'Pro',
    description: '',
    amount: 1000,
    currency: 'USD',
    period: 'P1M',
    role: 'premium',
    active: true,
  },
]);

const token = (sub: string, roles: string[], { exp = 600, key = secret } = {}) =>
  hs256Token(key, sub, roles, { expiresInS: exp });
const admin = token('ops', ['user', 'admin']);

// An active subscription paid by a completed payment, and a pending one.
const subId = randomUUID();
const paidId = randomUUID();
const pendingId = randomUUID();
await db.transaction().execute(async (trx) => {
  await subscriptions.create(trx, {
    id: subId,
    user_id: 'u-victim',
    plan_id: 'pro',
    plan_name: 'Pro',
    role: 'premium',
    amount: 1000,
    currency: 'USD',
    period: 'P1M',
  });
  const anchor = new Date(Date.now() - 86_400_000);
  await subscriptions.transition(
    trx,
    (await subscriptions.lock(trx, subId))!,
    { type: 'initial_payment_completed' },
    { anchor_at: anchor, paid_through: new Date(anchor.getTime() + 30 * 86_400_000) },
  );
  await payments.create(trx, {
    id: paidId,
    subscription_id: subId,
    user_id: 'u-victim',
    kind: 'initial',
    amount: 1000,
    currency: 'USD',
    period_index: 0,
  });
  await payments.transition(
    trx,
    (await payments.lock(trx, { id: paidId }))!,
    { type: 'capture_completed' },
    { provider_capture_id: 'CAP-1', period_start: anchor, period_end: new Date(anchor.getTime() + 30 * 86_400_000) },
  );
  await payments.create(trx, {
    id: pendingId,
    subscription_id: subId,
    user_id: 'u-victim',
    kind: 'renewal',
    amount: 1000,
    currency: 'USD',
    period_index: 1,
  });
  await trx
    .insertInto('role_grants')
    .values({ id: randomUUID(), user_id: 'u-victim', role: 'premium', source: 'subscription', subscription_id: subId })
    .execute();
});

/** Everything an operator action could change, as one comparable value. */
async function world() {
  const [audit, refunds, grants, plans, subs, pays] = await Promise.all([
    db.selectFrom('audit_log').select('id').execute(),
    db.selectFrom('refunds').select('id').execute(),
    db.selectFrom('role_grants').select(['id', 'ended_at']).execute(),
    db.selectFrom('plans').selectAll().orderBy('id').execute(),
    db.selectFrom('subscriptions').select(['id', 'status', 'version']).execute(),
    db.selectFrom('payments').select(['id', 'status', 'refunded_amount']).execute(),
  ]);
  return JSON.stringify({ audit: audit.length, refunds: refunds.length, grants, plans, subs, pays });
}

const results: [string, number, string][] = [];
async function hostile(
  t: Test,
  what: string,
  req: {
    method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
    url: string;
    token?: string | null;
    body?: unknown;
    headers?: Record<string, string>;
  },
  status: number,
  type?: string,
) {
  const before = await world();
  const raw = typeof req.body === 'string' ? req.body : req.body === undefined ? undefined : JSON.stringify(req.body);
  const res = await app.inject({
    method: req.method ?? 'GET',
    url: req.url,
    headers: {
      ...(req.token === null ? {} : { authorization: `Bearer ${req.token ?? admin}` }),
      ...(raw !== undefined ? { 'content-type': 'application/json' } : {}),
      ...req.headers,
    },
    ...(raw !== undefined ? { payload: raw } : {}),
  });
  t.equal(res.statusCode, status, what);
  const problem = res.headers['content-type']?.toString().startsWith('application/problem+json')
    ? (res.json() as { type: string }).type
    : '';
  if (type) t.equal(problem, `/problems/${type}`, `${what}: ${type}`);
  t.equal(await world(), before, `${what}: nothing changed`);
  results.push([what, res.statusCode, problem.replace('/problems/', '')]);
}

const P = '/admin/api/v1';
const ROUTES: ['GET' | 'POST' | 'PATCH' | 'DELETE', string, unknown?][] = [
  ['GET', `${P}/plans`],
  [
    'POST',
    `${P}/plans`,
    { id: 'x', name: 'X', description: '', amount: 1, currency: 'USD', period: 'P1M', role: 'x', active: true },
  ],
  ['PATCH', `${P}/plans/pro`, { active: false }],
  ['GET', `${P}/payments`],
  ['GET', `${P}/payments/${paidId}`],
  ['POST', `${P}/payments/${paidId}/refund`, { reason: 'x' }],
  ['GET', `${P}/subscriptions`],
  ['POST', `${P}/subscriptions/${subId}/cancel`, { mode: 'immediately', reason: 'x' }],
  ['GET', `${P}/users/u-victim`],
  ['POST', `${P}/users/u-victim/roles`, { role: 'admin', reason: 'x' }],
  ['DELETE', `${P}/users/u-victim/roles/premium`],
  ['GET', `${P}/dead-letters`],
  ['POST', `${P}/dead-letters/${randomUUID()}/replay`],
  ['GET', `${P}/audit`],
];

t.test('who: a token without admin, expired, or signed with another key opens no API route', async (t) => {
  const plain = token('mallory', ['user']);
  for (const [method, url, body] of ROUTES)
    await hostile(
      t,
      `${method} ${url.replace(P, '')} without admin`,
      { method, url, token: plain, body },
      403,
      'forbidden',
    );
  await hostile(
    t,
    'an expired admin token',
    { url: `${P}/plans`, token: token('ops', ['admin'], { exp: -120 }) },
    401,
    'unauthorized',
  );
  await hostile(
    t,
    'an admin token signed with another key',
    { url: `${P}/plans`, token: token('ops', ['admin'], { key: 'x'.repeat(40) }) },
    401,
    'unauthorized',
  );
  await hostile(
    t,
    'no token at all',
    { method: 'POST', url: `${P}/users/u1/roles`, token: null, body: { role: 'admin', reason: 'x' } },
    401,
    'unauthorized',
  );
  const expiredPage = await app.inject({
    url: '/payments',
    headers: { cookie: `billing_admin=${token('ops', ['admin'], { exp: -120 })}` },
  });
  t.equal(expiredPage.statusCode, 303, 'an expired session on a page: back to sign-in');
  t.equal(expiredPage.headers.location, '/login');
  results.push(['an expired session cookie on a page', 303, 'to /login']);
});

t.test(
  'refunds: negative, fractional, zero, too much, a string, another currency, no reason, ids of other types',
  async (t) => {
    const url = `${P}/payments/${paidId}/refund`;
    for (const [what, body] of [
      ['a negative amount', { amount: -100, reason: 'x' }],
      ['a fractional amount', { amount: 1.5, reason: 'x' }],
      ['a zero amount', { amount: 0, reason: 'x' }],
      ['an amount as a string', { amount: '100', reason: 'x' }],
      ['an amount over a billion', { amount: 1_000_000_001, reason: 'x' }],
      ['a refund in another currency', { amount: 100, currency: 'EUR', reason: 'x' }],
      ['no reason', { amount: 100 }],
      ['an empty reason', { amount: 100, reason: '' }],
      ['a reason of 1,001 characters', { amount: 100, reason: 'r'.repeat(1001) }],
      ['a __proto__ key', '{"reason":"x","__proto__":{"isAdmin":true}}'],
      ['malformed JSON', '{"reason": '],
    ] as const) {
      await hostile(t, `refund: ${what}`, { method: 'POST', url, body }, 400, 'validation');
    }
    await hostile(
      t,
      'refund: more than is left',
      { method: 'POST', url, body: { amount: 1001, reason: 'x' } },
      422,
      'refund-exceeds',
    );
    await hostile(
      t,
      'refund: a payment not completed',
      { method: 'POST', url: `${P}/payments/${pendingId}/refund`, body: { reason: 'x' } },
      422,
      'not-refundable',
    );
    for (const id of ['123', 'not-a-uuid', "' or 1=1 --", randomUUID(), subId]) {
      await hostile(
        t,
        `refund: payment id ${id.slice(0, 12)}`,
        { method: 'POST', url: `${P}/payments/${encodeURIComponent(id)}/refund`, body: { reason: 'x' } },
        404,
        'not-found',
      );
    }
    await hostile(
      t,
      'refund: JSON sent as text/plain',
      { method: 'POST', url, body: '{"reason":"x"}', headers: { 'content-type': 'text/plain' } },
      415,
      'unsupported-media-type',
    );
    await hostile(
      t,
      'refund: a body over 16 KiB',
      { method: 'POST', url, body: { reason: 'x', pad: 'p'.repeat(17 * 1024) } },
      413,
      'payload-too-large',
    );
  },
);

t.test('subscriptions, users, dead letters and lists: bad modes, roles, ids and pages', async (t) => {
  await hostile(
    t,
    'cancel: an unknown mode',
    { method: 'POST', url: `${P}/subscriptions/${subId}/cancel`, body: { mode: 'soon', reason: 'x' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'cancel: no reason',
    { method: 'POST', url: `${P}/subscriptions/${subId}/cancel`, body: { mode: 'immediately' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'cancel: a payment id as subscription id',
    { method: 'POST', url: `${P}/subscriptions/${paidId}/cancel`, body: { reason: 'x' } },
    404,
    'not-found',
  );
  await hostile(
    t,
    'cancel: not a UUID',
    { method: 'POST', url: `${P}/subscriptions/abc/cancel`, body: { reason: 'x' } },
    404,
    'not-found',
  );
  await hostile(
    t,
    'grant: a role with markup',
    { method: 'POST', url: `${P}/users/u1/roles`, body: { role: '<script>', reason: 'x' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'grant: a role of 101 characters',
    { method: 'POST', url: `${P}/users/u1/roles`, body: { role: 'r'.repeat(101), reason: 'x' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'grant: an extra property',
    { method: 'POST', url: `${P}/users/u1/roles`, body: { role: 'beta', reason: 'x', expiresAt: 'never' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'grant: a user id of 201 characters',
    { method: 'POST', url: `${P}/users/${'u'.repeat(201)}/roles`, body: { role: 'beta', reason: 'x' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'revoke: a role a live subscription holds',
    { method: 'DELETE', url: `${P}/users/u-victim/roles/premium` },
    409,
    'role-held-by-subscription',
  );
  await hostile(t, 'replay: not a UUID', { method: 'POST', url: `${P}/dead-letters/42/replay` }, 404, 'not-found');
  await hostile(
    t,
    'replay: an unknown dead letter',
    { method: 'POST', url: `${P}/dead-letters/${randomUUID()}/replay` },
    404,
    'not-found',
  );
  await hostile(t, 'list: limit 0', { url: `${P}/payments?limit=0` }, 400, 'validation');
  await hostile(t, 'list: limit 101', { url: `${P}/subscriptions?limit=101` }, 400, 'validation');
  await hostile(
    t,
    'list: a forged cursor',
    { url: `${P}/payments?cursor=${Buffer.from('2026|x').toString('base64url')}` },
    400,
    'validation',
  );
});

t.test('plans: shapes and rules refused, ids kept, nothing half-written', async (t) => {
  const good = {
    id: 'new-plan',
    name: 'New',
    description: '',
    amount: 500,
    currency: 'USD',
    period: 'P1M',
    role: 'new',
    active: true,
  };
  for (const [what, body] of [
    ['an unknown property', { ...good, trial: 'P7D!' }],
    [
      'a __proto__ key',
      `{"id":"p2","name":"N","description":"","amount":1,"currency":"USD","period":"P1M","role":"r","active":true,"__proto__":{}}`,
    ],
    ['an amount of 0', { ...good, amount: 0 }],
    ['a fractional amount', { ...good, amount: 4.99 }],
    ['an amount over a billion', { ...good, amount: 1_000_000_001 }],
    ['a currency PayPal does not take', { ...good, currency: 'XXX' }],
    ['a currency in lower case', { ...good, currency: 'usd' }],
    ['a fractional period', { ...good, period: 'P1.5M' }],
    ['a period of two units', { ...good, period: 'P1M1D' }],
    ['a zero period', { ...good, period: 'P0D' }],
    ['an id that is not a slug', { ...good, id: 'Bad Id' }],
    ['a role with spaces', { ...good, role: 'pro users' }],
    ['an empty name', { ...good, name: '' }],
    ['active as a string', { ...good, active: 'yes' }],
    ['an existing id', { ...good, id: 'pro' }],
  ] as const) {
    await hostile(t, `create plan: ${what}`, { method: 'POST', url: `${P}/plans`, body }, 400, 'validation');
  }
  await hostile(
    t,
    'change plan: its id',
    { method: 'PATCH', url: `${P}/plans/pro`, body: { id: 'other' } },
    400,
    'validation',
  );
  await hostile(
    t,
    'change plan: a negative amount',
    { method: 'PATCH', url: `${P}/plans/pro`, body: { amount: -1 } },
    400,
    'validation',
  );
  await hostile(
    t,
    'change plan: an unknown plan',
    { method: 'PATCH', url: `${P}/plans/nope`, body: { active: false } },
    404,
    'not-found',
  );
});

t.test('free text is rendered back escaped on every page that shows it', async (t) => {
  const script = '<script>alert(document.cookie)</script>';
  const res = await app.inject({
    method: 'POST',
    url: `${P}/users/u-xss/roles`,
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    payload: { role: 'beta', reason: script },
  });
  t.equal(res.statusCode, 202, 'a reason may hold any text');
  const plan = await app.inject({
    method: 'POST',
    url: `${P}/plans`,
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    payload: {
      id: 'xss',
      name: '<img src=x onerror=alert(1)>',
      description: '"><svg onload=alert(2)>',
      amount: 100,
      currency: 'USD',
      period: 'P1M',
      role: 'xss',
      active: true,
    },
  });
  t.equal(plan.statusCode, 201);
  // docs/disputes.md: a dispute's reason (PayPal's) and an operator's evidence shown on the home and the payment.
  const disputeId = randomUUID();
  await db
    .insertInto('disputes')
    .values({
      id: disputeId,
      provider_dispute_id: 'PP-D-XSS',
      payment_id: paidId,
      capture_id: 'CAP-XSS',
      amount: 100,
      currency: 'USD',
      reason: '<img src=x onerror=alert(3)>',
      status: 'OPEN',
      stage: 'INQUIRY',
      outcome: null,
      result: 'open',
      provider_updated_at: new Date(),
    })
    .execute();
  const evidence = await app.inject({
    method: 'POST',
    url: `${P}/disputes/${disputeId}/evidence`,
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    payload: { note: '<svg onload=alert(4)>' },
  });
  t.equal(evidence.statusCode, 202, 'evidence may hold any text');
  for (const [what, url, payload, status] of [
    ['an empty note', `${P}/disputes/${disputeId}/accept`, { note: '' }, 400],
    ['a blank note', `${P}/disputes/${disputeId}/accept`, { note: '   ' }, 400],
    ['a second answer while one waits', `${P}/disputes/${disputeId}/accept`, { note: 'x' }, 409],
    ['an unknown dispute', `${P}/disputes/${randomUUID()}/accept`, { note: 'x' }, 404],
    ['a malformed dispute id', `${P}/disputes/'1/evidence`, { note: 'x' }, 404],
  ] as const) {
    const r = await app.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      payload,
    });
    t.equal(r.statusCode, status, `dispute answer: ${what}`);
    results.push([`dispute answer: ${what}`, status, r.json().type]);
  }
  const cookie = { cookie: `billing_admin=${admin}` };
  for (const url of ['/', `/payments/${paidId}`]) {
    const page = await app.inject({ url, headers: cookie });
    t.equal(page.statusCode, 200, url);
    t.notMatch(page.body, /<img src=x onerror|<svg onload/, `${url}: no markup from a dispute`);
    t.match(
      page.body,
      /&#60;img src=x onerror=alert\(3\)&#62;|img src=x onerror=alert\(3\)/i,
      `${url}: the reason shown`,
    );
  }
  for (const url of ['/audit', '/plans', '/users/u-xss']) {
    const page = await app.inject({ url, headers: cookie });
    t.equal(page.statusCode, 200, url);
    t.notMatch(page.body, /<script>alert|<img src=x onerror|<svg onload/, `${url}: no markup from the data`);
  }
  t.match((await app.inject({ url: '/audit', headers: cookie })).body, /&#60;script&#62;alert/, 'shown escaped');
  // Escaped exactly once: an entity escaped again (`&#38;#60;`) or the portal's own markup shown as text
  // would mean a template's markup reached another as a plain string (the html tag, docs/admin.md).
  const pages = ['/', '/audit', '/plans', '/plans/xss/edit', '/users', '/users/u-xss', '/payments', '/subscriptions'];
  for (const url of [...pages, `/payments/${paidId}`, `/subscriptions/${subId}`, '/coupons', '/dead-letters']) {
    const page = await app.inject({ url, headers: cookie });
    t.equal(page.statusCode, 200, url);
    t.notMatch(page.body, /&#38;#\d+;/, `${url}: nothing escaped twice`);
    t.notMatch(
      page.body,
      /&#60;\/?(a|span|td|tr|th|p|div|strong|br|option|table|time|form|input)\b/,
      `${url}: no markup as text`,
    );
  }
  results.push(['script in a grant reason, rendered on /audit and /users/:id', 200, 'escaped']);
  results.push(['markup in a plan name and description, rendered on /plans', 200, 'escaped']);
  results.push(["markup in a dispute's reason and an operator's evidence, on / and the payment", 200, 'escaped']);
});

t.test('the table, and the portal still serving', async (t) => {
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200);
  t.ok(results.length >= 60, `${results.length} hostile inputs`);
  t.comment(results.map(([w, s, ty]) => `${s} ${ty} · ${w}`).join('\n'));
});
