import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { PAYMENT_STATUSES, fromPayPalValue } from '@billing/domain';
import {
  badge,
  diff,
  esc,
  facts,
  filters,
  link,
  major,
  money,
  pager,
  span,
  stateWithReason,
  shortId,
  table,
  time,
  userLink,
  type Column,
  type Html,
  html,
  joinHtml,
} from './html.js';
import { disputesSection } from './disputes.js';
import { confirmStep, doneTo, layout, notFound, listQuery, queryOf, refusedPage, type Kit } from './kit.js';
import {
  PaymentDetail,
  PaymentPage,
  PlanPage,
  SubscriptionPage,
  type AdminPaymentRow,
  type AuditRow,
} from './answers.js';

export const planOptions = async (kit: Kit, req: FastifyRequest): Promise<[string, string][]> => {
  const answer = await kit.read(req, '/admin/api/v1/plans', PlanPage);
  const plans = answer.ok ? answer.body.items : [];
  return [['', 'any plan'], ...plans.map((p) => [p.id, p.name] as [string, string])];
};

/**
 * A list of the admin API (payments, subscriptions) as a page: filters by user, status, plan and
 * creation dates that keep their values, the table, and the pager.
 */
export function listPage<S extends typeof PaymentPage | typeof SubscriptionPage>(
  kit: Kit,
  o: {
    path: string;
    title: string;
    statuses: readonly string[];
    page: S;
    columns: Column<Static<S>['items'][number]>[];
    empty: string;
  },
): void {
  kit.app.get(
    o.path,
    kit.page(o.path, async (req) => {
      const q = queryOf(req);
      const answer = await kit.read(
        req,
        `/admin/api/v1${o.path}?${listQuery(q, ['userId', 'status', 'planId', 'from', 'to'])}`,
        o.page,
      );
      const form = filters(
        [
          { name: 'userId', label: 'User', type: 'search' },
          {
            name: 'status',
            label: 'Status',
            options: [['', 'any status'], ...o.statuses.map((s) => [s, s.replace(/_/g, ' ')] as [string, string])],
          },
          { name: 'planId', label: 'Plan', options: await planOptions(kit, req) },
          { name: 'from', label: 'Created from', type: 'date' },
          { name: 'to', label: 'before', type: 'date' },
        ],
        q,
      );
      if (!answer.ok) return refusedPage(o.title, answer, o.path, o.path);
      return layout(
        o.title,
        html`${form}${table(o.title, o.columns, answer.body.items, o.empty)}${pager(q, answer.body.nextCursor)}`,
        {
          section: o.path,
          who: req.userId,
          flash: q['done'],
        },
      );
    }),
  );
}

export const auditTable = (rows: AuditRow[]): Html =>
  table(
    'Operator actions',
    [
      { head: 'At', cell: (a) => time(a.at) },
      { head: 'Operator', cell: (a) => esc(a.actor) },
      { head: 'Action', cell: (a) => esc(a.action) },
      { head: 'Reason', cell: (a) => esc(a.reason) },
      { head: 'Before → after', cell: (a) => diff(a.before, a.after) },
    ],
    rows,
    'No operator action on this yet.',
  );

export const paymentColumns = (withUser = true): Column<AdminPaymentRow>[] => [
  { head: 'Payment', cell: (p) => link(`/payments/${p.id}`, shortId(p.id)) },
  ...(withUser ? [{ head: 'User', cell: (p: AdminPaymentRow) => userLink(p.userId) }] : []),
  { head: 'Subscription', cell: (p) => link(`/subscriptions/${p.subscriptionId}`, shortId(p.subscriptionId)) },
  { head: 'Kind', cell: (p) => esc(p.kind) },
  { head: 'Amount', cell: (p) => money(p.amount, p.currency), num: true },
  {
    head: 'Status',
    cell: (p) => stateWithReason(p.status, p.failureReason),
  },
  { head: 'Refunded', cell: (p) => (p.refundedAmount ? money(p.refundedAmount, p.currency) : html``), num: true },
  { head: 'Pays for', cell: (p) => span(p.periodStart, p.periodEnd) },
  { head: 'Created', cell: (p) => time(p.createdAt) },
];

/** Payments: a list with filters and pages, one payment with everything linked, a refund with a confirmation step. */
export function paymentPages(kit: Kit): void {
  const { app, api, read, page, checked } = kit;
  listPage(kit, {
    path: '/payments',
    title: 'Payments',
    statuses: PAYMENT_STATUSES,
    page: PaymentPage,
    columns: paymentColumns(),
    empty: 'No payment matches these filters.',
  });

  app.get(
    '/payments/:id',
    page('/payments', async (req) => {
      const id = (req.params as { id: string }).id;
      const answer = await read(req, `/admin/api/v1/payments/${encodeURIComponent(id)}`, PaymentDetail);
      if (!answer.ok) return notFound('Payment', id, '/payments', req.userId);
      const p = answer.body;
      const refundable = p.refundableAmount > 0;
      const refundForm = refundable
        ? html`<form class="card" method="post" action="/payments/${p.id}/refund"><!--csrf-->
<label for="amount">Amount to refund (${p.currency}, at most ${money(p.refundableAmount, p.currency)})</label>
<input id="amount" name="amount" inputmode="decimal" required value="${major(p.refundableAmount, p.currency)}" aria-describedby="amount-help"> ${p.currency}
<p id="amount-help" class="muted">In ${p.currency}, e.g. ${major(Math.min(p.refundableAmount, 499), p.currency)}. You confirm on the next step.</p>
<label for="reason">Reason (kept in the audit log)</label><input id="reason" name="reason" required maxlength="1000">
<p><button>Refund…</button></p></form>`
        : html`<p class="muted">Nothing can be refunded: the payment is ${p.status.replace(/_/g, ' ')}${p.refundedAmount ? ' and refunds cover it' : ''}.</p>`;
      return layout(
        `Payment ${shortId(p.id)}`,
        html`<div class="card">${facts([
          ['Status', stateWithReason(p.status, p.failureReason)],
          ['Amount', money(p.amount, p.currency)],
          ['Refunded', money(p.refundedAmount, p.currency)],
          ['Can still be refunded', money(p.refundableAmount, p.currency)],
          ['User', userLink(p.userId)],
          [
            'Subscription',
            html`${link(`/subscriptions/${p.subscriptionId}`, shortId(p.subscriptionId))} ${badge(p.subscriptionStatus)}`,
          ],
          ['Plan', link(`/plans/${p.planId}/edit`, p.planId)],
          ['Kind', esc(p.kind)],
          ['Pays for', span(p.periodStart, p.periodEnd)],
          ['PayPal order', p.providerOrderId ? html`<span class="mono">${p.providerOrderId}</span>` : html``],
          ['PayPal capture', p.providerCaptureId ? html`<span class="mono">${p.providerCaptureId}</span>` : html``],
          [
            'Receipt',
            p.receiptNumber
              ? html`${link(`/payments/${p.id}/receipt`, p.receiptNumber)} · ${link(`/payments/${p.id}/receipt?format=pdf`, 'PDF')}`
              : html``,
          ],
          [
            'Credit notes',
            joinHtml(
              p.creditNotes.map((c) => html`${c.number} (${money(c.amount, p.currency)})`),
              html`, `,
            ),
          ],
          ['Created', time(p.createdAt)],
          ['Id', html`<span class="mono">${p.id}</span>`],
        ])}</div>
<h2>PayPal events</h2>${table(
          'PayPal events',
          [
            { head: 'Event', cell: (e) => esc(e.type) },
            { head: 'Event id', cell: (e) => html`<span class="mono">${e.id}</span>` },
            { head: 'Received', cell: (e) => time(e.receivedAt) },
            { head: 'Outcome', cell: (e) => esc(e.outcome) },
          ],
          p.events,
          'No webhook from PayPal for this payment.',
        )}
${disputesSection(p.id, p.disputes)}
<h2>Refunds</h2>${table(
          'Refunds',
          [
            { head: 'Refund', cell: (r) => html`<span class="mono">${shortId(r.id)}</span>` },
            { head: 'Amount', cell: (r) => money(r.amount, r.currency), num: true },
            {
              head: 'Status',
              cell: (r) => stateWithReason(r.status, r.failureReason),
            },
            { head: 'Origin', cell: (r) => esc(r.origin) },
            { head: 'Reason', cell: (r) => esc(r.reason) },
            { head: 'Requested', cell: (r) => time(r.createdAt) },
          ],
          p.refunds,
          'No refund.',
        )}
<h2>Refund</h2>${refundForm}
<h2>Operator actions</h2>${auditTable(p.audit)}`,
        { section: '/payments', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );

  app.get(
    '/payments/:id/receipt',
    page('/payments', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const pdf = queryOf(req)['format'] === 'pdf';
      const res = await kit.apiRaw(
        req,
        `/admin/api/v1/payments/${encodeURIComponent(id)}/receipt`,
        pdf ? 'application/pdf' : 'text/html',
      );
      if (res.status !== 200)
        return {
          status: 404,
          html: layout('No receipt', html`<p class="empty">No receipt for this payment.</p>`, {
            section: '/payments',
            who: req.userId,
          }),
        };
      return reply
        .type(res.type)
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        .send(res.body);
    }),
  );

  app.post(
    '/payments/:id/refund',
    checked,
    page('/payments', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const back = `/payments/${encodeURIComponent(id)}`;
      const { amount = '', reason = '', confirm } = (req.body ?? {}) as Record<string, string | undefined>;
      const answer = await read(req, `/admin/api/v1/payments/${encodeURIComponent(id)}`, PaymentDetail);
      if (!answer.ok) return refusedPage('Refund refused', answer, '/payments', '/payments');
      const p = answer.body;
      let minor: number;
      try {
        minor = fromPayPalValue(amount.trim(), p.currency);
      } catch {
        minor = NaN;
      }
      if (!Number.isSafeInteger(minor) || minor <= 0 || !reason.trim())
        return refusedPage(
          'Refund refused',
          {
            status: 400,
            body: {
              detail: !reason.trim()
                ? 'a reason is required'
                : `"${amount}" is not an amount in ${p.currency} (e.g. ${major(Math.min(p.refundableAmount || 499, 499), p.currency)})`,
            },
          },
          back,
          '/payments',
        );
      if (confirm !== 'yes')
        return layout(
          'Confirm the refund',
          confirmStep({
            action: `/payments/${id}/refund`,
            summary: html`<p>Refund <strong>${money(minor, p.currency)}</strong> of the ${money(p.amount, p.currency)} payment ${shortId(p.id)} by ${p.userId} (at most ${money(p.refundableAmount, p.currency)} can be refunded). PayPal sends it back to the buyer.</p><p>Reason: ${reason}</p>`,
            fields: { amount: amount.trim(), reason },
            confirmLabel: `Refund ${major(minor, p.currency)} ${p.currency}`,
            cancelHref: back,
            danger: true,
          }),
          { section: '/payments', who: req.userId },
        );
      const res = await api(req, 'POST', `/admin/api/v1/payments/${encodeURIComponent(id)}/refund`, {
        amount: minor,
        reason,
      });
      if (res.status >= 400) return refusedPage('Refund refused', res, back, '/payments');
      return doneTo(
        reply,
        back,
        `Refund of ${major(minor, p.currency)} ${p.currency} requested; PayPal is sending it.`,
      );
    }),
  );
}
