import { badge, esc, filters, html, joinHtml, link, pager, table, time, userLink } from './html.js';
import { confirmStep, doneTo, layout, listQuery, queryOf, refusedPage, type Kit } from './kit.js';
import { auditTable, paymentColumns } from './payments.js';
import { subscriptionColumns } from './subscriptions.js';
import { AuditPage, PaymentPage, UserDetail, UserPage } from './answers.js';

/** Users: an index with search; one user with roles, subscriptions, payments, grants and audit; grant and revoke. */
export function userPages(kit: Kit): void {
  const { app, api, read, page, checked } = kit;
  app.get(
    '/users',
    page('/users', async (req) => {
      const q = queryOf(req);
      const answer = await read(req, `/admin/api/v1/users?${listQuery(q, ['q'])}`, UserPage);
      if (!answer.ok) return refusedPage('Users', answer, '/users', '/users');
      return layout(
        'Users',
        html`${filters([{ name: 'q', label: 'User id contains', type: 'search' }], q)}${table(
          'Users',
          [
            { head: 'User', cell: (u) => userLink(u.userId) },
            {
              head: 'Subscriptions',
              cell: (u) => html`${u.activeSubscriptions} live of ${u.subscriptions}`,
              num: true,
            },
            {
              head: 'Payments',
              cell: (u) => link(`/payments?userId=${encodeURIComponent(u.userId)}`, String(u.payments)),
              num: true,
            },
            { head: 'Last activity', cell: (u) => time(u.lastActivityAt) },
          ],
          answer.body.items,
          q['q'] ? `Nobody whose id contains "${q['q']}".` : 'No user has bought anything yet.',
        )}${pager(q, answer.body.nextCursor)}`,
        { section: '/users', who: req.userId },
      );
    }),
  );

  app.get(
    '/users/:id',
    page('/users', async (req) => {
      const userId = (req.params as { id: string }).id;
      const enc = encodeURIComponent(userId);
      const [user, pays, audit] = await Promise.all([
        read(req, `/admin/api/v1/users/${enc}`, UserDetail),
        read(req, `/admin/api/v1/payments?userId=${enc}&limit=20`, PaymentPage),
        read(req, `/admin/api/v1/audit?target=${encodeURIComponent(`user:${userId}`)}&limit=50`, AuditPage),
      ]);
      if (!user.ok) return refusedPage(`User ${userId}`, user, '/users', '/users');
      const u = user.body;
      const manual = u.grants.filter((g) => g.source === 'manual' && !g.endedAt).map((g) => g.role);
      return layout(
        `User ${userId}`,
        html`<div class="card"><p>Roles at the Auth service: ${
          u.roles.length
            ? joinHtml(
                u.roles.map((r: string) => html`<span class="badge b-info">${r}</span>`),
                html` `,
              )
            : html`<span class="muted">none</span>`
        }</p></div>
<h2>Subscriptions</h2>${table('Subscriptions', subscriptionColumns(false), u.subscriptions, 'No subscription.')}
<h2>Payments</h2>${table('Payments', paymentColumns(false), pays.ok ? pays.body.items : [], 'No payment.')}${
          pays.ok && pays.body.nextCursor
            ? html`<p>${link(`/payments?userId=${enc}`, 'All payments of this user →')}</p>`
            : ''
        }
<h2>Role grants</h2>${table(
          'Role grants',
          [
            { head: 'Role', cell: (g) => esc(g.role) },
            {
              head: 'Source',
              cell: (g) =>
                g.subscriptionId
                  ? link(`/subscriptions/${g.subscriptionId}`, `subscription ${g.subscriptionId.slice(0, 8)}`)
                  : esc(g.source),
            },
            { head: 'State', cell: (g) => (g.endedAt ? badge('expired') : badge('active')) },
            { head: 'Started', cell: (g) => time(g.startedAt) },
            { head: 'Ended', cell: (g) => time(g.endedAt) },
            {
              head: 'By / reason',
              cell: (g) => esc([g.grantedBy, g.reason, g.endReason].filter(Boolean).join(' · ')),
            },
          ],
          u.grants,
          'No role granted by this system.',
        )}
<h2>Grant or revoke a role</h2>
<form class="card" method="post" action="/users/${enc}/roles"><!--csrf-->
<label for="role">Role</label><input id="role" name="role" required pattern="[A-Za-z0-9_.:\\-]{1,100}" list="held">
<datalist id="held">${manual.map((r: string) => html`<option value="${r}">`)}</datalist>
<label for="reason">Reason (kept in the audit log)</label><input id="reason" name="reason" required maxlength="1000">
<p><button name="action" value="grant">Grant…</button> <button class="secondary" name="action" value="revoke">Revoke…</button></p></form>
<h2>Operator actions</h2>${auditTable(audit.ok ? audit.body.items : [])}`,
        { section: '/users', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );

  app.post(
    '/users/:id/roles',
    checked,
    page('/users', async (req, reply) => {
      const userId = (req.params as { id: string }).id;
      const enc = encodeURIComponent(userId);
      const back = `/users/${enc}`;
      const { role = '', reason = '', action, confirm } = (req.body ?? {}) as Record<string, string | undefined>;
      if (!role.trim() || !reason.trim() || (action !== 'grant' && action !== 'revoke'))
        return refusedPage(
          'Refused',
          { status: 400, body: { detail: 'a role, a reason and grant or revoke are required' } },
          back,
          '/users',
        );
      if (confirm !== 'yes')
        return layout(
          action === 'grant' ? 'Confirm the grant' : 'Confirm the revoke',
          confirmStep({
            action: `/users/${enc}/roles`,
            summary:
              action === 'grant'
                ? html`<p>Give <strong>${userId}</strong> the role <strong>${role}</strong> at the Auth service, until an operator revokes it.</p><p>Reason: ${reason}</p>`
                : html`<p>Take the role <strong>${role}</strong> from <strong>${userId}</strong> at the Auth service (refused while a live subscription grants it).</p><p>Reason: ${reason}</p>`,
            fields: { role, reason, action },
            confirmLabel: action === 'grant' ? `Grant ${role}` : `Revoke ${role}`,
            cancelHref: back,
            danger: action === 'revoke',
          }),
          { section: '/users', who: req.userId },
        );
      const res =
        action === 'revoke'
          ? await api(req, 'DELETE', `/admin/api/v1/users/${enc}/roles/${encodeURIComponent(role)}`, { reason })
          : await api(req, 'POST', `/admin/api/v1/users/${enc}/roles`, { role, reason });
      if (res.status >= 400) return refusedPage('Refused', res, back, '/users');
      return doneTo(reply, back, action === 'grant' ? `Granting "${role}"…` : `Revoking "${role}"…`);
    }),
  );
}
