import t from 'tap';
import { waitFor } from '@billing/testing';
import { startStack } from '../src/stack.js';

const stack = await startStack();
t.teardown(() => stack.stop());
const PORTAL = stack.urls['admin-portal'];

async function admin(
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  as: 'bearer' | 'cookie' = 'bearer',
) {
  const res = await fetch(`${PORTAL}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(token && as === 'bearer' ? { authorization: `Bearer ${token}` } : {}),
      ...(token && as === 'cookie' ? { cookie: `billing_admin=${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : null,
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];

t.test('who may enter: 401 without a token, 403 without the admin role; pages redirect to /login', async (t) => {
  const user = await stack.tokenFor('user-plain');
  t.equal((await admin('GET', '/admin/api/v1/plans', undefined)).status, 401);
  const forbidden = await admin('GET', '/admin/api/v1/plans', user);
  t.equal(forbidden.status, 403);
  t.equal(forbidden.body.type, '/problems/forbidden');
  const page = await admin('GET', '/payments', undefined);
  t.equal(page.status, 303);
  t.equal(page.headers.get('location'), '/login');
  t.equal((await admin('GET', '/payments', user, undefined, 'cookie')).status, 403);
  // docs/admin.md: the API takes only a bearer header, the pages only the portal's cookie.
  const adminToken = await stack.tokenFor('ops-doors', ['admin']);
  t.equal((await admin('GET', '/admin/api/v1/plans', adminToken)).status, 200);
  t.equal(
    (await admin('GET', '/admin/api/v1/plans', adminToken, undefined, 'cookie')).status,
    401,
    'the cookie opens no API route',
  );
  t.equal((await admin('GET', '/payments', adminToken)).status, 303, 'a bearer header opens no page');
  t.equal((await admin('GET', '/payments', adminToken, undefined, 'cookie')).status, 200);
});

t.test(
  'sign-in through the Auth service sets an HttpOnly SameSite=Strict cookie; wrong credentials 401 and no cookie',
  async (t) => {
    const form = await fetch(`${PORTAL}/login`);
    const html = await form.text();
    const csrfToken = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    const csrfCookie = form.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    t.ok(csrfToken, 'the form carries a CSRF token');
    t.match(html, /name="login"/);
    t.match(html, /name="password"/);
    const post = (login: string, password: string, token = csrfToken!) =>
      fetch(`${PORTAL}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie },
        body: new URLSearchParams({ login, password, _csrf: token }).toString(),
      });
    const wrong = await post('admin', 'nope');
    t.equal(wrong.status, 401);
    t.notOk(
      wrong.headers.getSetCookie().some((c) => c.startsWith('billing_admin=')),
      'no cookie',
    );
    t.equal((await post('admin', 'admin-password', 'forged')).status, 403, 'a forged CSRF token is refused');
    const ok = await post('admin', 'admin-password');
    t.equal(ok.status, 303);
    t.equal(ok.headers.get('location'), '/payments');
    const set = ok.headers.getSetCookie().find((c) => c.startsWith('billing_admin='))!;
    t.match(set, /HttpOnly/);
    t.match(set, /SameSite=Strict/);
    const page = await fetch(`${PORTAL}/payments`, { headers: { cookie: set.split(';')[0]! } });
    t.equal(page.status, 200);
    t.match(await page.text(), /<h1>Payments<\/h1>/);
  },
);

t.test('operators: plans, refunds, cancels, manual grants and revokes, dead letters, all audited', async (t) => {
  const login = await stack.auth('/api/v1/auth/login', { login: 'admin', password: 'admin-password' });
  const tok = login.access_token as string;
  t.equal(
    (
      await admin('POST', '/admin/api/v1/plans', tok, {
        id: 'gold',
        name: 'Gold',
        description: 'g',
        amount: 0,
        currency: 'USD',
        period: 'P1M',
        role: 'gold',
        active: true,
      })
    ).status,
    400,
    'amount must be positive',
  );
  const created = await admin('POST', '/admin/api/v1/plans', tok, {
    id: 'gold',
    name: 'Gold',
    description: 'g',
    amount: 1500,
    currency: 'USD',
    period: 'P1M',
    role: 'gold',
    active: true,
  });
  t.equal(created.status, 201);
  const patched = await admin('PATCH', '/admin/api/v1/plans/gold', tok, { amount: 1700, active: false });
  t.match(patched.body, { id: 'gold', amount: 1700, active: false });
  t.equal((await admin('PATCH', '/admin/api/v1/plans/gold', tok, { period: 'P1M1D' })).status, 400);

  // a paid subscription to refund and cancel
  const userTok = await stack.tokenFor('user-ops');
  const buy = (await (
    await fetch(`${stack.urls['billing-api']}/v1/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userTok}`, 'content-type': 'application/json' },
      body: '{"planId":"pro-monthly"}',
    })
  ).json()) as any;
  await stack.paypal(`/_control/orders/${new URL(buy.approvalUrl).searchParams.get('token')}/approve`, {});
  await waitFor(async () => (await rolesOf('user-ops')).includes('premium'), { what: 'activation', timeoutMs: 20_000 });
  const list = await admin('GET', '/admin/api/v1/payments?userId=user-ops', tok);
  t.equal(list.body.items.length, 1);
  const pid = list.body.items[0].id;
  t.equal(
    (await admin('POST', `/admin/api/v1/payments/${pid}/refund`, tok, { amount: 5000, reason: 'too much' })).body.type,
    '/problems/refund-exceeds',
  );
  const refund = await admin('POST', `/admin/api/v1/payments/${pid}/refund`, tok, { amount: 199, reason: 'goodwill' });
  t.equal(refund.status, 202);
  await waitFor(async () => (await admin('GET', `/admin/api/v1/payments/${pid}`, tok)).body.refundedAmount === 199, {
    what: 'the refund completed',
    timeoutMs: 20_000,
  });
  const detail = await admin('GET', `/admin/api/v1/payments/${pid}`, tok);
  t.match(detail.body, {
    status: 'partially_refunded',
    refunds: [{ amount: 199, status: 'completed', reason: 'goodwill' }],
  });
  t.ok(
    detail.body.events.some((e: any) => e.type === 'PAYMENT.CAPTURE.COMPLETED'),
    'its PayPal events are listed',
  );

  // manual grants: held by a subscription → 409; a manual one granted and revoked at the Auth service
  t.equal((await admin('DELETE', '/admin/api/v1/users/user-ops/roles/premium', tok)).status, 409);
  t.equal(
    (await admin('POST', '/admin/api/v1/users/user-ops/roles', tok, { role: 'beta', reason: 'early access' })).status,
    202,
  );
  await waitFor(async () => (await rolesOf('user-ops')).includes('beta'), { what: 'the manual grant' });
  const user = await admin('GET', '/admin/api/v1/users/user-ops', tok);
  t.ok(user.body.roles.includes('beta'));
  t.ok(user.body.grants.some((g: any) => g.role === 'beta' && g.source === 'manual'));
  t.equal((await admin('DELETE', '/admin/api/v1/users/user-ops/roles/beta', tok)).status, 202);
  await waitFor(async () => !(await rolesOf('user-ops')).includes('beta'), { what: 'the manual revoke' });

  const subs = await admin('GET', '/admin/api/v1/subscriptions?userId=user-ops&status=active', tok);
  const cancelled = await admin('POST', `/admin/api/v1/subscriptions/${subs.body.items[0].id}/cancel`, tok, {
    mode: 'immediately',
    reason: 'fraud check',
  });
  t.equal(cancelled.body.status, 'cancelled');
  await waitFor(async () => !(await rolesOf('user-ops')).includes('premium'), { what: 'the role revoked on cancel' });

  const auditLog = await admin('GET', '/admin/api/v1/audit', tok);
  const actions = auditLog.body.items.map((a: any) => a.action);
  for (const a of [
    'plan.create',
    'plan.update',
    'payment.refund',
    'role.grant',
    'role.revoke',
    'subscription.cancel.immediately',
  ])
    t.ok(actions.includes(a), `${a} audited`);
  t.ok(
    auditLog.body.items.every((a: any) => a.actor === 'user-admin'),
    'the actor is the operator',
  );

  const dead = await admin('GET', '/admin/api/v1/dead-letters', tok);
  t.equal(dead.status, 200);
  t.equal(
    (await admin('POST', '/admin/api/v1/dead-letters/00000000-0000-4000-8000-000000000000/replay', tok)).status,
    404,
  );
});
