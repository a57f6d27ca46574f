import { toPayPalAmount } from '@billing/domain';
import type { ReceiptView } from './receipts.js';

const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const amount = (minor: number, currency: string) => `${toPayPalAmount(minor, currency).value} ${currency}`;
const day = (d: Date) => d.toISOString().slice(0, 10);

/** The receipt as a page of its own (no script; its style inline): for the buyer and the portal. */
export function receiptHtml(v: ReceiptView, seller: string): string {
  const { receipt: r, payment: p, creditNotes } = v;
  const notes = creditNotes.length
    ? `<h2>Credit notes</h2><table><thead><tr><th>Number</th><th>Issued</th><th>For</th><th class="n">Amount</th></tr></thead><tbody>${creditNotes
        .map(
          (c) =>
            `<tr><td>${esc(c.number)}</td><td>${esc(day(c.issued_at))}</td><td>${esc(c.description)}</td><td class="n">−${esc(amount(c.amount, c.currency))}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Receipt ${esc(r.number)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:720px;margin:2rem auto;color:#1b2230}h1{font-size:1.4rem}table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ddd}.n{text-align:right}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#555}dd{margin:0}</style></head>
<body><h1>Receipt ${esc(r.number)}</h1>
<dl><dt>From</dt><dd>${esc(seller)}</dd><dt>To</dt><dd>${esc(r.user_id)}</dd><dt>Issued</dt><dd>${esc(day(r.issued_at))}</dd><dt>Paid with</dt><dd>PayPal${p.provider_capture_id ? ` (capture ${esc(p.provider_capture_id)})` : ''}</dd></dl>
<table><thead><tr><th>Description</th><th class="n">Amount</th></tr></thead><tbody>
<tr><td>${esc(r.description)}</td><td class="n">${esc(amount(r.amount, r.currency))}</td></tr>
<tr><th>Total paid</th><th class="n">${esc(amount(r.amount, r.currency))}</th></tr></tbody></table>${notes}
<p>Payment ${esc(p.id)}</p></body></html>`;
}

/** The same receipt as a PDF (pdfkit, its standard Helvetica: no font files needed). */
export async function receiptPdf(v: ReceiptView, seller: string): Promise<Buffer> {
  // Loaded when a PDF is asked for: the processes that never render one do not carry pdfkit.
  const { default: PDFDocument } = await import('pdfkit');
  const { receipt: r, payment: p, creditNotes } = v;
  const doc = new PDFDocument({ size: 'A4', margin: 56, info: { Title: `Receipt ${r.number}`, Author: seller } });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.fontSize(20).text(`Receipt ${r.number}`);
  doc.moveDown(0.5).fontSize(11);
  doc.text(`From: ${seller}`);
  doc.text(`To: ${r.user_id}`);
  doc.text(`Issued: ${day(r.issued_at)}`);
  doc.text(`Paid with: PayPal${p.provider_capture_id ? ` (capture ${p.provider_capture_id})` : ''}`);
  doc.moveDown();
  doc.fontSize(12).text(r.description);
  doc.text(`Total paid: ${amount(r.amount, r.currency)}`);
  if (creditNotes.length) {
    doc.moveDown().fontSize(14).text('Credit notes');
    doc.fontSize(11);
    for (const c of creditNotes)
      doc.text(`${c.number}  ${day(c.issued_at)}  ${c.description}  -${amount(c.amount, c.currency)}`);
  }
  doc.moveDown().fontSize(9).text(`Payment ${p.id}`);
  doc.end();
  return done;
}
