/* eslint-disable @typescript-eslint/no-explicit-any -- the pages render the admin API's JSON answers, whose shapes that API defines */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthClient } from '@billing/auth-client';
import { AppError, type HttpApp } from '@billing/service-kit';
import { COOKIE } from '../admin.js';

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const money = (amount: number, currency: string) =>
  `${['JPY', 'HUF', 'TWD'].includes(currency) ? amount : (amount / 100).toFixed(2)} ${esc(currency)}`;

/** Where a page's forms get their CSRF field: filled in by `page` once the answer's token is known. */
const CSRF_FIELD = '<!--csrf-->';

function layout(title: string, body: string, signedIn = true): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Billing admin</title>
<style>body{font-family:system-ui,sans-serif;margin:0}nav{background:#223;padding:.6rem 1rem}nav a{color:#fff;margin-right:1rem;text-decoration:none}
main{padding:1rem 1.5rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;font-size:.92rem}
form.inline{display:inline}.error{color:#b00}label{display:block;margin:.4rem 0}input,select{padding:.3rem}</style></head><body>
${
  signedIn
    ? `<nav><a href="/payments">Payments</a><a href="/subscriptions">Subscriptions</a><a href="/plans">Plans</a><a href="/dead-letters">Dead letters</a><a href="/audit">Audit</a>
<form class="inline" method="post" action="/logout">${CSRF_FIELD}<button>Sign out</button></form></nav>`
    : ''
}<main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

const table = (heads: string[], rows: string[][]) =>
  `<table><thead><tr>${heads.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;

/** docs/admin.md's pages: server-rendered, signed in through the Auth service, forms carrying a CSRF token. */
export function adminPages(app: HttpApp, { auth }: { auth: AuthClient }): void {
  /** Runs the admin API for the signed-in operator (pages and API share one implementation). */
  const api = async (
    req: FastifyRequest,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
  ) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${req.cookies[COOKIE] ?? ''}`, 'x-request-id': req.id },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
    return { status: res.statusCode, body: res.json() as any };
  };
  /** A page: signed out → 303 /login; not an admin → 403. */
  const page =
    (render: (req: FastifyRequest, reply: FastifyReply) => Promise<string>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        await app.authenticateCookie(req);
      } catch {
        return reply.redirect('/login', 303);
      }
      if (!req.userRoles.includes('admin'))
        return reply
          .status(403)
          .type('text/html')
          .send(layout('Forbidden', '<p>This needs the admin role.</p>', false));
      return reply.type('text/html').send((await render(req, reply)).replaceAll(CSRF_FIELD, csrf(reply)));
    };
  const csrf = (reply: FastifyReply) => `<input type="hidden" name="_csrf" value="${esc(reply.generateCsrf())}">`;
  // preHandler: the form's _csrf field is only readable once the body is parsed.
  const checked = { preHandler: app.csrfProtection };

  app.get('/login', async (_req, reply) =>
    reply.type('text/html').send(layout('Sign in', loginForm(csrf(reply)), false)),
  );
  // Sign-in attempts are limited per client address: guessing passwords costs time (docs/admin.md).
  app.post(
    '/login',
    { ...checked, config: { rateLimit: { max: 10, timeWindow: '5 minutes' } } },
    async (req, reply) => {
      const { login, password } = (req.body ?? {}) as { login?: string; password?: string };
      let token: string | null = null;
      try {
        token = typeof login === 'string' && typeof password === 'string' ? await auth.login(login, password) : null;
      } catch {
        throw new AppError('auth-service-unavailable', 'the Auth service is unreachable; try again shortly', {
          'retry-after': '5',
        });
      }
      if (!token)
        return reply
          .status(401)
          .type('text/html')
          .send(layout('Sign in', `<p class="error">Wrong login or password.</p>${loginForm(csrf(reply))}`, false));
      const secure = req.protocol === 'https';
      reply.setCookie(COOKIE, token, { httpOnly: true, sameSite: 'strict', secure, path: '/' });
      return reply.redirect('/payments', 303);
    },
  );
  app.post('/logout', checked, async (_req, reply) => {
    reply.clearCookie(COOKIE, { path: '/' });
    return reply.redirect('/login', 303);
  });

  app.get(
    '/',
    page(async () => layout('Billing admin', '<p><a href="/payments">Payments</a></p>')),
  );
  app.get(
    '/payments',
    page(async (req) => {
      const q = new URLSearchParams(req.query as Record<string, string>).toString();
      const { body } = await api(req, 'GET', `/admin/api/v1/payments?${q}`);
      return layout(
        'Payments',
        `<form method="get"><input name="userId" placeholder="user id"> <input name="status" placeholder="status"> <button>Search</button></form>` +
          table(
            ['Payment', 'User', 'Kind', 'Amount', 'Status', 'Refunded', 'Created'],
            (body.items ?? []).map((p: any) => [
              `<a href="/payments/${esc(p.id)}">${esc(p.id.slice(0, 8))}</a>`,
              `<a href="/users/${encodeURIComponent(p.userId)}">${esc(p.userId)}</a>`,
              esc(p.kind),
              money(p.amount, p.currency),
              esc(p.status),
              money(p.refundedAmount, p.currency),
              esc(p.createdAt),
            ]),
          ),
      );
    }),
  );
  app.get(
    '/payments/:id',
    page(async (req, reply) => {
      const { status, body: p } = await api(
        req,
        'GET',
        `/admin/api/v1/payments/${encodeURIComponent((req.params as { id: string }).id)}`,
      );
      if (status !== 200) return layout('Payment', '<p>No such payment.</p>');
      return layout(
        `Payment ${p.id}`,
        `<p>${esc(p.userId)} · ${esc(p.kind)} · ${money(p.amount, p.currency)} · <b>${esc(p.status)}</b> · refunded ${money(p.refundedAmount, p.currency)}</p>
<h2>PayPal events</h2>${table(
          ['Type', 'Event id', 'Received', 'Outcome'],
          p.events.map((e: any) => [esc(e.type), esc(e.id), esc(e.receivedAt), esc(e.outcome)]),
        )}
<h2>Refunds</h2>${table(
          ['Refund', 'Amount', 'Status', 'Reason'],
          p.refunds.map((r: any) => [esc(r.id.slice(0, 8)), money(r.amount, r.currency), esc(r.status), esc(r.reason)]),
        )}
<h2>Refund</h2><form method="post" action="/payments/${esc(p.id)}/refund">${csrf(reply)}<label>Amount (minor units, empty for all that is left) <input name="amount" inputmode="numeric"></label><label>Reason <input name="reason" required></label><button>Refund</button></form>`,
      );
    }),
  );
  app.post('/payments/:id/refund', checked, async (req, reply) => {
    const { amount, reason } = req.body as { amount?: string; reason?: string };
    const id = (req.params as { id: string }).id;
    const res = await api(req, 'POST', `/admin/api/v1/payments/${encodeURIComponent(id)}/refund`, {
      reason,
      ...(amount ? { amount: Number(amount) } : {}),
    });
    if (res.status === 401) return reply.redirect('/login', 303);
    if (res.status >= 400)
      return reply
        .status(res.status)
        .type('text/html')
        .send(
          layout(
            'Refund refused',
            `<p class="error">${esc(res.body.detail)}</p><p><a href="/payments/${esc(id)}">Back</a></p>`,
          ),
        );
    return reply.redirect(`/payments/${encodeURIComponent(id)}`, 303);
  });
  app.get(
    '/subscriptions',
    page(async (req) => {
      const q = new URLSearchParams(req.query as Record<string, string>).toString();
      const { body } = await api(req, 'GET', `/admin/api/v1/subscriptions?${q}`);
      return layout(
        'Subscriptions',
        `<form method="get"><input name="userId" placeholder="user id"> <input name="status" placeholder="status"> <button>Search</button></form>` +
          table(
            ['Subscription', 'User', 'Plan', 'Status', 'Period end', 'Ends at period end'],
            (body.items ?? []).map((s: any) => [
              esc(s.id.slice(0, 8)),
              `<a href="/users/${encodeURIComponent(s.userId)}">${esc(s.userId)}</a>`,
              esc(s.planId),
              esc(s.status),
              esc(s.currentPeriodEnd),
              s.cancelAtPeriodEnd ? 'yes' : 'no',
            ]),
          ),
      );
    }),
  );
  app.get(
    '/users/:id',
    page(async (req, reply) => {
      const userId = (req.params as { id: string }).id;
      const { status, body: u } = await api(req, 'GET', `/admin/api/v1/users/${encodeURIComponent(userId)}`);
      if (status !== 200) return layout(`User ${userId}`, `<p class="error">${esc(u.detail)}</p>`);
      return layout(
        `User ${userId}`,
        `<p>Roles at the Auth service: ${u.roles.map(esc).join(', ') || '(none)'}</p>
<h2>Subscriptions</h2>${table(
          ['Plan', 'Role', 'Status', 'Period end'],
          u.subscriptions.map((s: any) => [esc(s.planId), esc(s.role), esc(s.status), esc(s.currentPeriodEnd)]),
        )}
<h2>Grants</h2>${table(
          ['Role', 'Source', 'Started', 'Ended', 'Reason'],
          u.grants.map((g: any) => [esc(g.role), esc(g.source), esc(g.startedAt), esc(g.endedAt), esc(g.reason)]),
        )}
<h2>Grant or revoke a role</h2><form method="post" action="/users/${encodeURIComponent(userId)}/roles">${csrf(reply)}<label>Role <input name="role" required></label><label>Reason <input name="reason" required></label>
<button name="action" value="grant">Grant</button> <button name="action" value="revoke">Revoke</button></form>`,
      );
    }),
  );
  app.post('/users/:id/roles', checked, async (req, reply) => {
    const userId = (req.params as { id: string }).id;
    const { role = '', reason = '', action } = req.body as { role?: string; reason?: string; action?: string };
    const res =
      action === 'revoke'
        ? await api(
            req,
            'DELETE',
            `/admin/api/v1/users/${encodeURIComponent(userId)}/roles/${encodeURIComponent(role)}`,
            { reason },
          )
        : await api(req, 'POST', `/admin/api/v1/users/${encodeURIComponent(userId)}/roles`, { role, reason });
    if (res.status >= 400)
      return reply
        .status(res.status)
        .type('text/html')
        .send(layout('Refused', `<p class="error">${esc(res.body.detail)}</p>`));
    return reply.redirect(`/users/${encodeURIComponent(userId)}`, 303);
  });
  app.get(
    '/plans',
    page(async (req, reply) => {
      const { body } = await api(req, 'GET', '/admin/api/v1/plans');
      return layout(
        'Plans',
        table(
          ['Id', 'Name', 'Amount', 'Period', 'Role', 'Active'],
          body.items.map((p: any) => [
            esc(p.id),
            esc(p.name),
            money(p.amount, p.currency),
            esc(p.period),
            esc(p.role),
            p.active ? 'yes' : 'no',
          ]),
        ) +
          `<h2>Create or edit a plan</h2><form method="post" action="/plans">${csrf(reply)}<label>Id <input name="id" required></label><label>Name <input name="name" required></label><label>Description <input name="description"></label>
<label>Amount (minor units) <input name="amount" required></label><label>Currency <input name="currency" value="USD"></label><label>Period <input name="period" value="P1M"></label><label>Role <input name="role" required></label>
<label>Active <select name="active"><option>true</option><option>false</option></select></label><button>Save</button></form>`,
      );
    }),
  );
  app.post('/plans', checked, async (req, reply) => {
    const b = req.body as Record<string, string>;
    const plan = {
      id: b['id'],
      name: b['name'],
      description: b['description'] ?? '',
      amount: Number(b['amount']),
      currency: b['currency'],
      period: b['period'],
      role: b['role'],
      active: b['active'] !== 'false',
    };
    const exists = (await api(req, 'GET', '/admin/api/v1/plans')).body.items?.some((p: any) => p.id === plan.id);
    const { id, ...rest } = plan;
    const res = exists
      ? await api(req, 'PATCH', `/admin/api/v1/plans/${encodeURIComponent(String(id))}`, rest)
      : await api(req, 'POST', '/admin/api/v1/plans', plan);
    if (res.status >= 400)
      return reply
        .status(res.status)
        .type('text/html')
        .send(layout('Plan refused', `<p class="error">${esc(res.body.detail)}</p><p><a href="/plans">Back</a></p>`));
    return reply.redirect('/plans', 303);
  });
  app.get(
    '/dead-letters',
    page(async (req, reply) => {
      const { body } = await api(req, 'GET', '/admin/api/v1/dead-letters');
      return layout(
        'Dead letters',
        table(
          ['Queue', 'Type', 'Error', 'Attempts', 'Dead at', 'Replayed', ''],
          body.items.map((d: any) => [
            esc(d.queue),
            esc(d.type),
            esc(d.error),
            esc(d.attempts),
            esc(d.deadAt),
            esc(d.replayedAt ?? ''),
            `<form class="inline" method="post" action="/dead-letters/${esc(d.id)}/replay">${csrf(reply)}<button>Replay</button></form>`,
          ]),
        ),
      );
    }),
  );
  app.post('/dead-letters/:id/replay', checked, async (req, reply) => {
    const res = await api(
      req,
      'POST',
      `/admin/api/v1/dead-letters/${encodeURIComponent((req.params as { id: string }).id)}/replay`,
    );
    if (res.status >= 400)
      return reply
        .status(res.status)
        .type('text/html')
        .send(layout('Replay refused', `<p class="error">${esc(res.body.detail)}</p>`));
    return reply.redirect('/dead-letters', 303);
  });
  app.get(
    '/audit',
    page(async (req) => {
      const { body } = await api(req, 'GET', '/admin/api/v1/audit');
      return layout(
        'Audit',
        table(
          ['At', 'Actor', 'Action', 'Target', 'Reason'],
          body.items.map((a: any) => [esc(a.at), esc(a.actor), esc(a.action), esc(a.target), esc(a.reason)]),
        ),
      );
    }),
  );
}

function loginForm(csrfField: string): string {
  return `<form method="post" action="/login">${csrfField}<label>Login <input name="login" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label><button>Sign in</button></form>`;
}
