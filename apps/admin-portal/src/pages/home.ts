import { plansChart, revenueChart } from './charts.js';
import { CANCEL_REASONS, type CancelReason } from '@billing/domain';
import { esc, html, joinHtml, money, table, type Html } from './html.js';
import { Type } from 'typebox';
import { Dispute, Stats } from '../api/schemas.js';
import { openDisputesTable } from './disputes.js';
import { layout, queryOf, refusedPage, type Kit } from './kit.js';

const stat = (label: string, value: Html, href?: string): Html =>
  html`<div class="stat"><div class="v">${href ? html`<a href="${href}">${value}</a>` : value}</div><div class="l">${label}</div></div>`;

/** Why buyers leave (docs/api.md, cancel): this month's reasons, most given first. */
const reasonsOf = (rows: { reason: string; count: number }[]): Html =>
  html`<h2>Why buyers cancel</h2>${table(
    'Cancel reasons this month',
    [
      { head: 'Reason', cell: (r) => esc(CANCEL_REASONS[r.reason as CancelReason] ?? r.reason) },
      { head: 'This month', cell: (r) => esc(r.count), num: true },
    ],
    rows,
    'No buyer gave a reason for cancelling this month.',
  )}`;

/** The home dashboard: the figures an operator checks every morning, and two charts. */
export function homePages({ app, read, page }: Kit): void {
  app.get(
    '/',
    page('/', async (req) => {
      const [answer, disputes] = await Promise.all([
        read(req, '/admin/api/v1/stats', Stats),
        read(req, '/admin/api/v1/disputes?open=true', Type.Object({ items: Type.Array(Dispute) })),
      ]);
      if (!answer.ok) return refusedPage('Today', answer, '/', '/');
      if (!disputes.ok) return refusedPage('Today', disputes, '/', '/');
      const s = answer.body;
      const monthStart = `${s.at.slice(0, 7)}-01`;
      const mrr: Html = s.mrr.length
        ? joinHtml(
            s.mrr.map((m) => money(m.amount, m.currency)),
            html`<br>`,
          )
        : money(0, 'USD');
      const refunded: Html = s.refundedThisMonth.length
        ? joinHtml(
            s.refundedThisMonth.map((m) => money(m.amount, m.currency)),
            html`<br>`,
          )
        : html`0`;
      const currencies = [...new Set<string>(s.revenuePerDay.map((r) => r.currency))];
      const main = s.mrr[0]?.currency ?? currencies[0] ?? 'USD';
      const charts = html`${revenueChart(
        s.revenuePerDay.filter((r) => r.currency === main),
        main,
        new Date(s.at),
      )}${plansChart(s.subscriptionsByPlan)}`;
      const others = currencies.filter((c) => c !== main);
      return layout(
        'Today',
        html`<section class="grid" aria-label="Key figures">
${stat('Active subscriptions', esc(s.activeSubscriptions), '/subscriptions?status=active')}
${stat('Monthly recurring revenue', mrr)}
${stat('New this month', esc(s.newThisMonth), `/subscriptions?from=${monthStart}`)}
${stat('Churned this month', esc(s.churnedThisMonth), '/subscriptions?status=expired')}
${stat('In dunning (past due)', esc(s.inDunning), '/subscriptions?status=past_due')}
${stat('In a free trial', esc(s.inTrial), '/subscriptions?status=trialing')}
${stat('Failed payments this month', esc(s.failedPaymentsThisMonth), `/payments?status=failed&from=${monthStart}`)}
${stat('Refunded this month', refunded, '/payments?status=refunded')}
${stat('Retention offers accepted this month', html`${s.retentionThisMonth.accepted} of ${s.retentionThisMonth.offered}`)}
${stat('Open disputes', esc(disputes.body.items.length), '#disputes')}
</section>${openDisputesTable(disputes.body.items)}${reasonsOf(s.cancelReasonsThisMonth)}<h2>Trends</h2><div class="charts">${charts}</div>${
          others.length ? html`<p class="muted">Revenue in ${others.join(', ')} is not drawn; see Payments.</p>` : ''
        }`,
        { section: '/', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );
}
