import { html, major, type Html } from './html.js';

/** Server-rendered SVG (no script, no CDN): revenue per day for the last 90 days, one currency. */
export function revenueChart(points: { day: string; amount: number }[], currency: string, today: Date): Html {
  const days: string[] = [];
  for (let i = 89; i >= 0; i--) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    days.push(d.toISOString().slice(0, 10));
  }
  const by = new Map(points.map((p) => [p.day, p.amount]));
  const values = days.map((d) => by.get(d) ?? 0);
  const max = Math.max(1, ...values);
  const [w, h, left, bottom] = [720, 200, 56, 22];
  const bw = (w - left) / days.length;
  const total = values.reduce((a, b) => a + b, 0);
  const bars = values.map((v, i) => {
    const bh = Math.round(((h - bottom - 10) * v) / max);
    return v
      ? html`<rect x="${(left + i * bw + 1).toFixed(1)}" y="${h - bottom - bh}" width="${(bw - 2).toFixed(1)}" height="${bh}" fill="#3b5bdb"><title>${days[i]}: ${major(v, currency)} ${currency}</title></rect>`
      : '';
  });
  const ticks = [0, 0.5, 1].map((f) => {
    const y = h - bottom - Math.round((h - bottom - 10) * f);
    return html`<line x1="${left}" x2="${w}" y1="${y}" y2="${y}" stroke="#e3e6ec"/><text x="${left - 6}" y="${y + 4}" text-anchor="end">${major(Math.round(max * f), currency)}</text>`;
  });
  const labels = [0, 30, 60, 89].map(
    (i) =>
      html`<text x="${left + (i === 89 ? (i + 1) * bw : i * bw)}" y="${h - 6}"${i === 89 ? html` text-anchor="end"` : ''}>${days[i]!.slice(5)}</text>`,
  );
  return html`<figure class="card"><figcaption><strong>Revenue per day, last 90 days (${currency})</strong> · total ${major(total, currency)} ${currency}</figcaption>
<svg viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="Revenue per day in ${currency} over the last 90 days, total ${major(total, currency)}">${ticks}${bars}${labels}</svg></figure>`;
}

/** Horizontal bars: active subscriptions per plan, with the total ever sold. */
export function plansChart(rows: { planId: string; active: number; total: number }[]): Html {
  if (rows.length === 0)
    return html`<figure class="card"><figcaption><strong>Subscriptions by plan</strong></figcaption><p class="muted">No subscriptions yet.</p></figure>`;
  const max = Math.max(1, ...rows.map((r) => r.active));
  const rowH = 26;
  const [w, left] = [360, 110];
  const h = rows.length * rowH + 8;
  const bars = rows.map((r, i) => {
    const bw = Math.round(((w - left - 60) * r.active) / max);
    const y = 4 + i * rowH;
    return html`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${r.planId}</text><rect x="${left}" y="${y + 3}" width="${Math.max(bw, r.active ? 2 : 0)}" height="16" fill="#2f9e44"><title>${r.planId}: ${r.active} active of ${r.total}</title></rect><text x="${left + bw + 6}" y="${y + 15}">${r.active} / ${r.total}</text>`;
  });
  return html`<figure class="card"><figcaption><strong>Subscriptions by plan</strong> · active / all</figcaption>
<svg viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="Active subscriptions per plan">${bars}</svg></figure>`;
}
