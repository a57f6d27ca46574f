import { Revenue, type RevenueMonth } from '../api/revenue.js';
import { esc, html, major, money, table, type Html } from './html.js';
import { layout, refusedPage, type Kit } from './kit.js';

// docs/admin.md, revenue: MRR at the price charged, its movements per month, and the same as CSV.

/** Bars of MRR per month (server-rendered SVG, no script). */
function mrrChart(currency: string, months: RevenueMonth[]): Html {
  const [w, h, left, bottom] = [720, 180, 64, 22];
  const max = Math.max(1, ...months.map((m) => m.mrr));
  const bw = (w - left) / Math.max(1, months.length);
  const bars = months.map((m, i) => {
    const bh = Math.round(((h - bottom - 10) * m.mrr) / max);
    return html`<rect x="${(left + i * bw + 2).toFixed(1)}" y="${h - bottom - bh}" width="${(bw - 4).toFixed(1)}" height="${bh}" fill="#3b5bdb"><title>${m.month}: ${major(m.mrr, currency)} ${currency}</title></rect><text x="${(left + i * bw + bw / 2).toFixed(1)}" y="${h - 6}" text-anchor="middle">${m.month.slice(2)}</text>`;
  });
  return html`<figure class="card"><figcaption><strong>MRR per month (${currency})</strong></figcaption>
<svg viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="MRR per month in ${currency}, last ${months.length} months">${bars}<text x="${left - 6}" y="14" text-anchor="end">${major(max, currency)}</text></svg></figure>`;
}

const CSV_HEAD = 'currency,month,mrr,new,expansion,contraction,churn,reactivation,churn_rate';

export function revenuePages(kit: Kit): void {
  const { app, read, page } = kit;
  app.get(
    '/revenue',
    page('/revenue', async (req) => {
      const answer = await read(req, '/admin/api/v1/revenue', Revenue);
      if (!answer.ok) return refusedPage('Revenue', answer, '/', '/revenue');
      const sections = answer.body.currencies.map(
        ({ currency, months }) =>
          html`<h2>${currency}</h2>${mrrChart(currency, months)}${table(
            `Revenue movements in ${currency}`,
            [
              { head: 'Month', cell: (m) => esc(m.month) },
              { head: 'MRR', cell: (m) => money(m.mrr, currency), num: true },
              { head: 'New', cell: (m) => money(m.new, currency), num: true },
              { head: 'Expansion', cell: (m) => money(m.expansion, currency), num: true },
              { head: 'Contraction', cell: (m) => money(m.contraction, currency), num: true },
              { head: 'Churn', cell: (m) => money(m.churn, currency), num: true },
              { head: 'Reactivation', cell: (m) => money(m.reactivation, currency), num: true },
              { head: 'Churn rate', cell: (m) => esc(m.churnRate === null ? '—' : `${m.churnRate}%`), num: true },
            ],
            months,
            'No month yet.',
          )}`,
      );
      return layout(
        'Revenue',
        html`<p>Monthly recurring revenue at the price actually charged (coupons applied, trials out), and
how it moved each month. <a class="button secondary" href="/revenue.csv" download>Download CSV</a></p>${
          sections.length ? sections : html`<p class="empty" role="status">No payment yet: no revenue to show.</p>`
        }`,
        { section: '/revenue', who: req.userId },
      );
    }),
  );
  app.get(
    '/revenue.csv',
    page('/revenue', async (req, reply) => {
      const answer = await read(req, '/admin/api/v1/revenue', Revenue);
      if (!answer.ok) return refusedPage('Revenue', answer, '/', '/revenue');
      const lines = answer.body.currencies.flatMap(({ currency, months }) =>
        months.map((m) =>
          [
            currency,
            m.month,
            major(m.mrr, currency),
            major(m.new, currency),
            major(m.expansion, currency),
            major(m.contraction, currency),
            major(m.churn, currency),
            major(m.reactivation, currency),
            m.churnRate ?? '',
          ].join(','),
        ),
      );
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="revenue.csv"')
        .send([CSV_HEAD, ...lines].join('\n') + '\n');
    }),
  );
}
