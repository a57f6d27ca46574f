import t from 'tap';
import { AuthClient } from '@billing/auth-client';
import { createMigratedTestDb } from '@billing/db/testing';
import { createRuntime } from '@billing/runtime';
import { createTestVhost, hs256Token } from '@billing/testing';
import { buildApp } from '../src/app.js';
import { loadPortalConfig } from '../src/config.js';

// The portal's doors, in-process (app.inject) on a real database: who opens the API and the
// pages, CSRF on every state-changing form, security headers, Secure cookies behind a TLS proxy,
// and a limit on sign-in attempts (docs/admin.md, who may enter).
const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
const secret = 'portal-security-test-secret-0123456789';
const token = (sub: string, roles: string[]) => hs256Token(secret, sub, roles);
class FakeAuth extends AuthClient {
  override async login(login: string, password: string) {
    if (password !== `${login}-password`) return null;
    return token(login, login === 'ops' ? ['user', 'admin'] : ['user']);
  }
  override async getRoles() {
    return ['user'];
  }
}

async function portal(env: Record<string, string> = {}) {
  const config = loadPortalConfig({
    DATABASE_URL: tdb.url,
    AMQP_URL: vhost.url,
    JWT_SECRET: secret,
    AUTH_SERVICE_URL: 'http://127.0.0.1:9',
    AUTH_SERVICE_TOKEN: 'svc',
    LOG_LEVEL: 'error',
    ...env,
  });
  const rt = createRuntime('portal-security-test', config);
  const app = await buildApp({
    rt,
    config,
    auth: new FakeAuth({ baseUrl: 'http://127.0.0.1:9', serviceToken: 'svc' }),
  });
  t.teardown(async () => {
    await app.close();
    await rt.close();
  });
  return app;
}
t.teardown(async () => {
  await tdb.drop();
  await vhost.drop();
});
const app = await portal();
const admin = token('ops', ['user', 'admin']);

/** The login form's CSRF token and the cookie that goes with it. */
async function loginForm(a = app, headers: Record<string, string> = {}) {
  const res = await a.inject({ url: '/login', headers });
  const field = /name="_csrf" value="([^"]+)"/.exec(res.body)?.[1] ?? '';
  const cookie = res.cookies.find((c) => c.name === '_csrf');
  return { field, cookie: cookie ? `_csrf=${cookie.value}` : '', raw: cookie, res };
}
async function signIn(login: string, a = app, headers: Record<string, string> = {}, query = '') {
  const form = await loginForm(a, headers);
  return a.inject({
    method: 'POST',
    url: `/login${query}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie, ...headers },
    payload: new URLSearchParams({ login, password: `${login}-password`, _csrf: form.field }).toString(),
  });
}

t.test('the admin API takes a bearer token only: the session cookie, form-encoded or not, opens nothing', async (t) => {
  const session = `billing_admin=${admin}`;
  for (const [method, url, payload] of [
    ['POST', '/admin/api/v1/users/victim/roles', 'role=admin&reason=x'],
    ['POST', `/admin/api/v1/payments/${crypto.randomUUID()}/refund`, 'reason=x'],
    ['POST', `/admin/api/v1/subscriptions/${crypto.randomUUID()}/cancel`, 'mode=immediately&reason=x'],
  ] as const) {
    const res = await app.inject({
      method,
      url,
      headers: { cookie: session, 'content-type': 'application/x-www-form-urlencoded' },
      payload,
    });
    t.equal(res.statusCode, 401, `${url} with the cookie: 401`);
  }
  t.same(await tdb.db.selectFrom('role_grants').select('id').execute(), [], 'nothing granted');
  const ok = await app.inject({
    method: 'POST',
    url: '/admin/api/v1/users/someone/roles',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    payload: { role: 'beta', reason: 'early access' },
  });
  t.equal(ok.statusCode, 202, 'the bearer token works');
  const form = await app.inject({
    method: 'POST',
    url: '/admin/api/v1/users/someone/roles',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'role=beta&reason=x',
  });
  t.equal(form.statusCode, 415, 'the API reads JSON only');
});

t.test('pages carry a CSP with frame-ancestors and nosniff', async (t) => {
  for (const res of [
    await app.inject({ url: '/login' }),
    await app.inject({ url: '/payments', headers: { cookie: `billing_admin=${admin}` } }),
    await app.inject({ url: '/admin/api/v1/plans', headers: { authorization: `Bearer ${admin}` } }),
  ]) {
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/);
    t.match(res.headers['content-security-policy'], /default-src 'none'/);
    t.equal(res.headers['x-content-type-options'], 'nosniff');
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN');
  }
});

t.test(
  'sign-in: the cookie is HttpOnly and SameSite=Strict; Secure over https behind a trusted proxy only',
  async (t) => {
    const plain = await signIn('ops');
    t.equal(plain.statusCode, 303);
    t.equal(plain.headers.location, '/payments');
    const session = plain.cookies.find((c) => c.name === 'billing_admin')!;
    t.match(session, { httpOnly: true, sameSite: 'Strict', path: '/' });
    t.notOk(session.secure, 'plain http: not Secure');
    const spoofed = await signIn('ops', app, { 'x-forwarded-proto': 'https' });
    t.notOk(
      spoofed.cookies.find((c) => c.name === 'billing_admin')!.secure,
      'X-Forwarded-Proto from an untrusted peer is ignored',
    );
    const behindProxy = await portal({ TRUST_PROXY: '1' });
    const tls = await signIn('ops', behindProxy, { 'x-forwarded-proto': 'https' });
    t.equal(tls.cookies.find((c) => c.name === 'billing_admin')?.secure, true, 'behind a TLS proxy: Secure');
    const csrfCookie = (await loginForm(behindProxy, { 'x-forwarded-proto': 'https' })).raw;
    t.equal(csrfCookie?.secure, true, 'the CSRF cookie too');
    t.equal(
      (await signIn('ops', app, {}, '?next=https://evil.example/')).headers.location,
      '/payments',
      'no redirect parameter is followed',
    );
    const wrong = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: (await loginForm()).cookie },
      payload: 'login=ops&password=nope',
    });
    t.equal(wrong.statusCode, 403, 'no CSRF field: refused before the password is even checked');
  },
);

t.test('every state-changing form checks CSRF, sign-out included', async (t) => {
  const session = `billing_admin=${admin}`;
  const noToken = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: session } });
  t.equal(noToken.statusCode, 403, 'sign-out without a CSRF token');
  const page = await app.inject({ url: '/payments', headers: { cookie: session } });
  const field = /action="\/logout"><input type="hidden" name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
  t.ok(field, 'the sign-out form carries a CSRF field');
  const csrfCookie = page.cookies.find((c) => c.name === '_csrf')!;
  const out = await app.inject({
    method: 'POST',
    url: '/logout',
    headers: { cookie: `${session}; _csrf=${csrfCookie.value}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `_csrf=${encodeURIComponent(field!)}`,
  });
  t.equal(out.statusCode, 303);
  t.equal(out.cookies.find((c) => c.name === 'billing_admin')?.value, '', 'the session cookie cleared');
  const other = await loginForm();
  const forged = await app.inject({
    method: 'POST',
    url: '/users/u1/roles',
    headers: { cookie: `${session}; _csrf=${csrfCookie.value}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `role=admin&reason=x&_csrf=${encodeURIComponent(other.field)}`,
  });
  t.equal(forged.statusCode, 403, "a CSRF token from another session's cookie is refused");
});

t.test('sign-in attempts are limited per client address: the 11th in five minutes is 429', async (t) => {
  const limited = await portal();
  const statuses: number[] = [];
  for (let i = 0; i < 11; i++) {
    const form = await loginForm(limited, { 'x-forwarded-for': '203.0.113.9' });
    const res = await limited.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie },
      payload: new URLSearchParams({ login: 'ops', password: `guess-${i}`, _csrf: form.field }).toString(),
    });
    statuses.push(res.statusCode);
    if (i === 10) {
      t.equal(res.json().type, '/problems/rate-limited');
      t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After');
    }
  }
  t.same(statuses, [...Array(10).fill(401), 429]);
});
