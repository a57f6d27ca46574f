import { SUBSCRIPTION_STATUSES } from '@billing/domain';
import {
  badge,
  esc,
  facts,
  link,
  money,
  shortId,
  span,
  stateWithReason,
  table,
  time,
  userLink,
  type Column,
  type Html,
  html,
} from './html.js';
import { confirmStep, doneTo, layout, notFound, queryOf, refusedPage, type Kit } from './kit.js';
import { auditTable, listPage, paymentColumns } from './payments.js';
import { pauseSection } from './pauses.js';
import { SubscriptionDetail, SubscriptionPage, type AdminSubscriptionRow, type SubscriptionRow } from './answers.js';

/** Period end for a live subscription; when it was cancelled for a cancelled one. */
export const periodCell = (s: SubscriptionRow): Html =>
  s.status === 'cancelled'
    ? html`cancelled ${time(s.cancelledAt)}`
    : s.status === 'expired'
      ? html`ended`
      : s.currentPeriodEnd
        ? html`${time(s.currentPeriodEnd)}${s.cancelAtPeriodEnd ? html` <span class="badge b-warn">ends then</span>` : ''}`
        : html``;

export const subscriptionColumns = (withUser = true): Column<SubscriptionRow>[] => [
  { head: 'Subscription', cell: (s) => link(`/subscriptions/${s.id}`, shortId(s.id)) },
  ...(withUser ? [{ head: 'User', cell: (s: SubscriptionRow) => userLink(s.userId ?? '') }] : []),
  { head: 'Plan', cell: (s) => link(`/plans/${s.planId}/edit`, s.planId) },
  { head: 'Price', cell: (s) => html`${money(s.amount, s.currency)} / ${s.period}`, num: true },
  { head: 'Status', cell: (s) => badge(s.status) },
  { head: 'Period end / cancelled', cell: periodCell },
  { head: 'Created', cell: (s) => time(s.createdAt) },
];

const cancellable = (s: AdminSubscriptionRow) =>
  s.status === 'active' ||
  s.status === 'past_due' ||
  s.status === 'pending' ||
  s.status === 'trialing' ||
  s.status === 'paused';

/** Subscriptions: list, detail with payments, grants and audit, and an operator's cancel in both modes. */
export function subscriptionPages(kit: Kit): void {
  const { app, api, read, page, checked } = kit;
  listPage(kit, {
    path: '/subscriptions',
    title: 'Subscriptions',
    statuses: SUBSCRIPTION_STATUSES,
    page: SubscriptionPage,
    columns: subscriptionColumns(),
    empty: 'No subscription matches these filters.',
  });

  app.get(
    '/subscriptions/:id',
    page('/subscriptions', async (req) => {
      const id = (req.params as { id: string }).id;
      const answer = await read(req, `/admin/api/v1/subscriptions/${encodeURIComponent(id)}`, SubscriptionDetail);
      if (!answer.ok) return notFound('Subscription', id, '/subscriptions', req.userId);
      const s = answer.body;
      const live = s.status === 'active' || s.status === 'past_due' || s.status === 'trialing';
      const period: [string, Html][] =
        s.status === 'cancelled'
          ? [['Cancelled', time(s.cancelledAt)]]
          : live
            ? [
                ['Current period', span(s.currentPeriodStart, s.currentPeriodEnd)],
                [
                  'At period end',
                  s.cancelAtPeriodEnd ? html`<span class="badge b-warn">ends, no renewal</span>` : html`renews`,
                ],
              ]
            : [];
      const cancelForm = cancellable(s)
        ? html`<form class="card" method="post" action="/subscriptions/${s.id}/cancel"><!--csrf-->
<fieldset><legend>When</legend>
<label><input type="radio" name="mode" value="at_period_end" checked> At the period end: no renewal, the role stays until ${s.currentPeriodEnd ? time(s.currentPeriodEnd) : 'then'}</label>
<label><input type="radio" name="mode" value="immediately"> Immediately: the role goes now, unused time refunded pro rata</label></fieldset>
<label for="reason">Reason (kept in the audit log)</label><input id="reason" name="reason" required maxlength="1000">
<p><button>Cancel subscription…</button></p></form>`
        : html`<p class="muted">A ${s.status.replace(/_/g, ' ')} subscription cannot be cancelled.</p>`;
      return layout(
        `Subscription ${shortId(s.id)}`,
        html`<div class="card">${facts([
          ['Status', badge(s.status)],
          ['User', userLink(s.userId)],
          ['Plan', link(`/plans/${s.planId}/edit`, s.planId)],
          ['Role', esc(s.role)],
          ['Price', html`${money(s.amount, s.currency)} every ${s.period}`],
          ...period,
          ...(s.trialStart ? ([['Free trial', span(s.trialStart, s.trialEnd)]] as [string, Html][]) : []),
          ...(s.scheduledChange
            ? ([
                [
                  'Scheduled change',
                  html`to ${link(`/plans/${s.scheduledChange.planId}/edit`, s.scheduledChange.planId)} at ${time(s.scheduledChange.effectiveAt)}`,
                ],
              ] as [string, Html][])
            : []),
          ['Created', time(s.createdAt)],
          ['Id', html`<span class="mono">${s.id}</span>`],
        ])}</div>
<h2>Payments</h2>${table('Payments of this subscription', paymentColumns(false), s.payments, 'No payment yet.')}
<h2>Plan changes</h2>${table(
          'Plan changes',
          [
            { head: 'Asked', cell: (c) => time(c.createdAt) },
            { head: 'From → to', cell: (c) => html`${c.fromPlanId} → ${c.toPlanId}` },
            { head: 'Kind', cell: (c) => esc(c.kind.replace(/_/g, ' ')) },
            {
              head: 'Charged',
              cell: (c) =>
                c.paymentId
                  ? html`<a href="/payments/${c.paymentId}">${money(c.amount, c.currency)}</a>`
                  : money(c.amount, c.currency),
              num: true,
            },
            { head: 'Takes effect', cell: (c) => time(c.effectiveAt) },
            {
              head: 'Status',
              cell: (c) => stateWithReason(c.status, c.failureReason),
            },
          ],
          s.planChanges,
          'No plan change.',
        )}
<h2>Role grants</h2>${table(
          'Grants of this subscription',
          [
            { head: 'Role', cell: (g) => esc(g.role) },
            { head: 'Started', cell: (g) => time(g.startedAt) },
            { head: 'Ended', cell: (g) => time(g.endedAt) },
            { head: 'Why it ended', cell: (g) => esc(g.endReason) },
          ],
          s.grants,
          'No role granted: the subscription was never paid for.',
        )}
${pauseSection(s)}
<h2>Cancel</h2>${cancelForm}
<h2>Operator actions</h2>${auditTable(s.audit)}`,
        { section: '/subscriptions', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );

  app.post(
    '/subscriptions/:id/cancel',
    checked,
    page('/subscriptions', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const back = `/subscriptions/${encodeURIComponent(id)}`;
      const { mode = 'at_period_end', reason = '', confirm } = (req.body ?? {}) as Record<string, string | undefined>;
      const answer = await read(req, `/admin/api/v1/subscriptions/${encodeURIComponent(id)}`, SubscriptionDetail);
      if (!answer.ok) return refusedPage('Cancel refused', answer, '/subscriptions', '/subscriptions');
      const s = answer.body;
      if (!reason.trim() || (mode !== 'at_period_end' && mode !== 'immediately'))
        return refusedPage(
          'Cancel refused',
          { status: 400, body: { detail: 'a reason and a mode are required' } },
          back,
          '/subscriptions',
        );
      if (confirm !== 'yes')
        return layout(
          'Confirm the cancellation',
          confirmStep({
            action: `/subscriptions/${id}/cancel`,
            summary:
              mode === 'immediately'
                ? html`<p>Cancel ${s.userId}'s <strong>${s.planId}</strong> subscription <strong>now</strong>: the role "${s.role}" is taken away at once, and the unused part of every paid period is refunded pro rata.</p><p>Reason: ${reason}</p>`
                : html`<p>End ${s.userId}'s <strong>${s.planId}</strong> subscription <strong>at its period end</strong>${s.currentPeriodEnd ? html` (${time(s.currentPeriodEnd)})` : ''}: no more renewals; the role stays until then.</p><p>Reason: ${reason}</p>`,
            fields: { mode, reason },
            confirmLabel: mode === 'immediately' ? 'Cancel now and refund' : 'Cancel at period end',
            cancelHref: back,
            danger: mode === 'immediately',
          }),
          { section: '/subscriptions', who: req.userId },
        );
      const res = await api(req, 'POST', `/admin/api/v1/subscriptions/${encodeURIComponent(id)}/cancel`, {
        mode,
        reason,
      });
      if (res.status >= 400) return refusedPage('Cancel refused', res, back, '/subscriptions');
      return doneTo(
        reply,
        back,
        mode === 'immediately' ? 'Cancelled now; refunds are on their way.' : 'Set to end at the period end.',
      );
    }),
  );
}
