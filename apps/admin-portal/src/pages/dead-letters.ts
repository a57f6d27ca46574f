import {
  badge,
  diff,
  esc,
  facts,
  filters,
  link,
  pager,
  shortId,
  table,
  targetLink,
  time,
  type Html,
  html,
} from './html.js';
import { confirmStep, doneTo, layout, notFound, listQuery, queryOf, refusedPage, type Kit } from './kit.js';
import { auditTable } from './payments.js';
import { AuditPage, DeadLetter, DeadLetterPage } from './answers.js';

function pretty(body: unknown): string {
  if (typeof body !== 'string') return JSON.stringify(body, null, 2);
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

/** Dead letters: list, one with its body and attempts, replay or discard with a confirmation; and the audit log. */
export function deadLetterPages(kit: Kit): void {
  const { app, api, read, page, checked } = kit;
  app.get(
    '/dead-letters',
    page('/dead-letters', async (req) => {
      const q = queryOf(req);
      const answer = await read(req, `/admin/api/v1/dead-letters?${listQuery(q, ['status', 'queue'])}`, DeadLetterPage);
      if (!answer.ok) return refusedPage('Dead letters', answer, '/dead-letters', '/dead-letters');
      return layout(
        'Dead letters',
        html`${filters(
          [
            {
              name: 'status',
              label: 'State',
              options: [
                ['', 'any state'],
                ['open', 'open (needs a look)'],
                ['replayed', 'replayed'],
                ['discarded', 'discarded'],
              ],
            },
            { name: 'queue', label: 'Queue', type: 'search' },
          ],
          q,
        )}${table(
          'Dead letters',
          [
            { head: 'Message', cell: (d) => link(`/dead-letters/${d.id}`, d.type ?? shortId(d.id)) },
            { head: 'Queue', cell: (d) => html`<span class="mono">${d.queue}</span>` },
            { head: 'Error', cell: (d) => esc((d.error ?? '').slice(0, 140)) },
            { head: 'Attempts', cell: (d) => esc(d.attempts), num: true },
            {
              head: 'State',
              cell: (d) =>
                html`${badge(d.status)}${d.replayCount ? html` <span class="muted">${d.replayCount}× replayed</span>` : ''}`,
            },
            { head: 'Dead since', cell: (d) => time(d.diedAgainAt ?? d.deadAt) },
          ],
          answer.body.items,
          q['status'] || q['queue']
            ? 'No dead letter matches these filters.'
            : 'No dead letter: every message was handled.',
        )}${pager(q, answer.body.nextCursor)}`,
        { section: '/dead-letters', who: req.userId, flash: q['done'] },
      );
    }),
  );

  app.get(
    '/dead-letters/:id',
    page('/dead-letters', async (req) => {
      const id = (req.params as { id: string }).id;
      const [d, audit] = await Promise.all([
        read(req, `/admin/api/v1/dead-letters/${encodeURIComponent(id)}`, DeadLetter),
        read(req, `/admin/api/v1/audit?target=${encodeURIComponent(`dead-letter:${id}`)}&limit=50`, AuditPage),
      ]);
      if (!d.ok) return notFound('Dead letter', id, '/dead-letters', req.userId);
      const x = d.body;
      const actions: Html =
        x.status === 'discarded'
          ? html`<p class="muted">Discarded by ${x.discardedBy} ${time(x.discardedAt)}: ${x.discardReason}</p>`
          : html`<form class="card" method="post" action="/dead-letters/${x.id}/act"><!--csrf-->
<label for="reason">Reason (kept in the audit log)</label><input id="reason" name="reason" required maxlength="1000">
<p><button name="action" value="replay">Replay…</button> <button class="secondary" name="action" value="discard">Discard…</button></p></form>`;
      return layout(
        `Dead letter ${shortId(x.id)}`,
        html`<div class="card">${facts([
          ['State', badge(x.status)],
          ['Type', esc(x.type)],
          ['Queue', html`<span class="mono">${x.queue}</span>`],
          ['Message id', html`<span class="mono">${x.messageId}</span>`],
          ['Attempts', esc(x.attempts)],
          ['Error', esc(x.error)],
          ['Dead since', time(x.deadAt)],
          ['Replayed', x.replayCount ? html`${x.replayCount}×, last ${time(x.replayedAt)}` : html`never`],
          ['Died again after a replay', time(x.diedAgainAt)],
        ])}</div>
<h2>Body</h2><pre tabindex="0" aria-label="Message body">${pretty(x.body)}</pre>
<h2>Act</h2>${actions}
<h2>Operator actions</h2>${auditTable(audit.ok ? audit.body.items : [])}`,
        { section: '/dead-letters', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );

  app.post(
    '/dead-letters/:id/act',
    checked,
    page('/dead-letters', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const back = `/dead-letters/${encodeURIComponent(id)}`;
      const { action, reason = '', confirm } = (req.body ?? {}) as Record<string, string | undefined>;
      if ((action !== 'replay' && action !== 'discard') || !reason.trim())
        return refusedPage(
          'Refused',
          { status: 400, body: { detail: 'replay or discard, and a reason, are required' } },
          back,
          '/dead-letters',
        );
      const d = await read(req, `/admin/api/v1/dead-letters/${encodeURIComponent(id)}`, DeadLetter);
      if (!d.ok) return refusedPage('Refused', d, '/dead-letters', '/dead-letters');
      if (confirm !== 'yes')
        return layout(
          action === 'replay' ? 'Confirm the replay' : 'Confirm the discard',
          confirmStep({
            action: `/dead-letters/${id}/act`,
            summary:
              action === 'replay'
                ? html`<p>Put the <strong>${d.body.type}</strong> message back on <span class="mono">${d.body.queue}</span> with its attempts reset. If it fails again, this dead letter says so (no copy is made).</p><p>Reason: ${reason}</p>`
                : html`<p>Discard the <strong>${d.body.type}</strong> message: it is kept here, marked discarded, and can no longer be replayed.</p><p>Reason: ${reason}</p>`,
            fields: { action, reason },
            confirmLabel: action === 'replay' ? 'Replay' : 'Discard',
            cancelHref: back,
            danger: action === 'discard',
          }),
          { section: '/dead-letters', who: req.userId },
        );
      const res = await api(req, 'POST', `/admin/api/v1/dead-letters/${encodeURIComponent(id)}/${action}`, { reason });
      if (res.status >= 400)
        return refusedPage(action === 'replay' ? 'Replay refused' : 'Discard refused', res, back, '/dead-letters');
      return doneTo(reply, back, action === 'replay' ? 'Replayed: the message is back on its queue.' : 'Discarded.');
    }),
  );

  app.get(
    '/audit',
    page('/audit', async (req) => {
      const q = queryOf(req);
      const answer = await read(
        req,
        `/admin/api/v1/audit?${listQuery(q, ['actor', 'action', 'target', 'from', 'to'])}`,
        AuditPage,
      );
      if (!answer.ok) return refusedPage('Audit', answer, '/audit', '/audit');
      return layout(
        'Audit',
        html`${filters(
          [
            { name: 'actor', label: 'Operator', type: 'search' },
            {
              name: 'action',
              label: 'Action',
              options: [
                ['', 'any action'],
                ['payment.refund', 'refund'],
                ['subscription.cancel', 'cancel'],
                ['role.grant', 'grant'],
                ['role.revoke', 'revoke'],
                ['plan', 'plan change'],
                ['dead-letter', 'dead letter'],
              ],
            },
            { name: 'target', label: 'Target (e.g. user:alice)', type: 'search' },
            { name: 'from', label: 'From', type: 'date' },
            { name: 'to', label: 'before', type: 'date' },
          ],
          q,
        )}${table(
          'Audit log',
          [
            { head: 'At', cell: (a) => time(a.at) },
            { head: 'Operator', cell: (a) => link(`/audit?actor=${encodeURIComponent(a.actor)}`, a.actor) },
            { head: 'Action', cell: (a) => esc(a.action) },
            { head: 'Target', cell: (a) => targetLink(a.target) },
            { head: 'Reason', cell: (a) => esc(a.reason) },
            { head: 'Before → after', cell: (a) => diff(a.before, a.after) },
          ],
          answer.body.items,
          'No operator action matches these filters.',
        )}${pager(q, answer.body.nextCursor)}`,
        { section: '/audit', who: req.userId },
      );
    }),
  );
}
