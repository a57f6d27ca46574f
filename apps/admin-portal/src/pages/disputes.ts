import { Type, type Static } from 'typebox';
import { badge, esc, html, link, money, shortId, table, time, userLink, type Html } from './html.js';
import { confirmStep, doneTo, layout, refusedPage, type Kit } from './kit.js';
import { Dispute } from '../api/schemas.js';

// docs/disputes.md on the portal: the open disputes on the home page, a payment's disputes on its
// page with the two answers an operator can give while one is open (accept the claim, evidence).

type DisputeView = Static<typeof Dispute>;
const words = (s: string | null) => esc(s ? s.replace(/_/g, ' ').toLowerCase() : '');

/** The open disputes, for the home page: amount, reason, PayPal's status and stage, the payment. */
export const openDisputesTable = (rows: DisputeView[]): Html =>
  html`<h2 id="disputes">Open disputes (${rows.length})</h2>${table(
    'Open disputes',
    [
      { head: 'Payment', cell: (d) => link(`/payments/${d.paymentId}#disputes`, shortId(d.paymentId)) },
      { head: 'User', cell: (d) => userLink(d.userId) },
      { head: 'Amount', cell: (d) => money(d.amount, d.currency), num: true },
      { head: 'Reason', cell: (d) => words(d.reason) },
      { head: 'Status', cell: (d) => badge(d.status.toLowerCase()) },
      { head: 'Stage', cell: (d) => words(d.stage) },
      { head: 'Opened', cell: (d) => time(d.createdAt) },
    ],
    rows,
    'No open dispute.',
  )}`;

const ACTION_WORDS = { accept_claim: 'Accept the claim', provide_evidence: 'Evidence' } as const;

/** A payment's disputes, and for an open one the operator's two answers. */
export function disputesSection(paymentId: string, disputes: DisputeView[]): Html {
  if (!disputes.length) return html``;
  const one = (d: DisputeView): Html => {
    const base = `/payments/${paymentId}/disputes/${d.id}`;
    const waiting = d.actions.some((a) => a.status === 'requested');
    const forms =
      d.result !== 'open'
        ? html``
        : waiting
          ? html`<p class="muted">An answer is on its way to PayPal.</p>`
          : html`<form class="card" method="post" action="${base}/evidence"><!--csrf-->
<label for="evidence-${d.id}">Evidence for PayPal (text)</label><textarea id="evidence-${d.id}" name="note" required maxlength="2000" rows="3"></textarea>
<p><button>Send evidence</button></p></form>
<form class="card" method="post" action="${base}/accept"><!--csrf-->
<label for="accept-${d.id}">Note to the buyer</label><input id="accept-${d.id}" name="note" required maxlength="2000">
<p><button class="danger">Accept the claim…</button></p></form>`;
    return html`<div class="card"><p><strong>${d.providerDisputeId}</strong> ${badge(d.status.toLowerCase())} ${
      d.result === 'open' ? '' : badge(d.result)
    } ${money(d.amount, d.currency)}: ${words(d.reason)}${d.stage ? html` (${words(d.stage)})` : ''}; opened ${time(d.createdAt)}${
      d.outcome ? html`; outcome ${words(d.outcome)}` : ''
    }</p>${table(
      `Answers to ${d.providerDisputeId}`,
      [
        { head: 'Answer', cell: (a) => esc(ACTION_WORDS[a.action]) },
        { head: 'Text', cell: (a) => esc(a.note) },
        { head: 'Status', cell: (a) => html`${badge(a.status)} ${a.failureReason ?? ''}` },
        { head: 'By', cell: (a) => esc(a.requestedBy) },
        { head: 'When', cell: (a) => time(a.createdAt) },
      ],
      d.actions,
      'No answer sent yet.',
    )}${forms}</div>`;
  };
  return html`<h2 id="disputes">Disputes</h2>${disputes.map(one)}`;
}

/** The two answers posted from a payment's page; accepting the claim asks for a confirmation first. */
export function disputePages({ app, api, read, page, checked }: Kit): void {
  for (const path of ['accept', 'evidence'] as const)
    app.post(
      `/payments/:id/disputes/:disputeId/${path}`,
      checked,
      page('/payments', async (req, reply) => {
        const { id, disputeId } = req.params as { id: string; disputeId: string };
        const back = `/payments/${encodeURIComponent(id)}`;
        const { note = '', confirm } = (req.body ?? {}) as Record<string, string | undefined>;
        if (!note.trim())
          return refusedPage(
            'Answer refused',
            { status: 400, body: { detail: 'a text is required' } },
            back,
            '/payments',
          );
        if (path === 'accept' && confirm !== 'yes') {
          const list = await read(req, `/admin/api/v1/disputes`, Type.Object({ items: Type.Array(Dispute) }));
          const d = list.ok ? list.body.items.find((x) => x.id === disputeId) : undefined;
          return layout(
            'Confirm: accept the claim',
            confirmStep({
              action: `/payments/${id}/disputes/${disputeId}/accept`,
              summary: html`<p>Accept the buyer's claim${d ? html` ${d.providerDisputeId} for <strong>${money(d.amount, d.currency)}</strong>` : ''}: PayPal refunds the buyer and closes the dispute. The subscription the payment paid for ends, as after a chargeback.</p><p>Note: ${note}</p>`,
              fields: { note },
              confirmLabel: 'Accept the claim',
              cancelHref: back,
              danger: true,
            }),
            { section: '/payments', who: req.userId },
          );
        }
        const res = await api(req, 'POST', `/admin/api/v1/disputes/${encodeURIComponent(disputeId)}/${path}`, {
          note: note.trim(),
        });
        if (res.status >= 400) return refusedPage('Answer refused', res, back, '/payments');
        return doneTo(
          reply,
          back,
          path === 'accept' ? 'Claim accepted; PayPal is told.' : 'Evidence recorded; PayPal is told.',
        );
      }),
    );
}
