import type { Order } from './state.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The payer-action page: what the buyer sees at "PayPal", with Approve and Cancel. */
export function approvalPage(o: Order): string {
  const unit = o.purchase_units[0]!;
  const open = o.status === 'PAYER_ACTION_REQUIRED' || o.status === 'CREATED';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PayPal sandbox stand-in: approve your payment</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}.amount{font-size:2rem;margin:1rem 0}
button{font-size:1.1rem;padding:.6rem 1.4rem;margin-right:.5rem;border-radius:1.5rem;border:0;cursor:pointer}
#approve{background:#ffc439}#cancel{background:#eee}</style></head>
<body><h1>PayPal (sandbox stand-in)</h1>
<p>${esc(unit.description ?? 'Your order')}</p>
<p class="amount">${esc(unit.amount.value)} ${esc(unit.amount.currency_code)}</p>
<p>Order <code>${esc(o.id)}</code>: ${esc(o.status)}</p>
${
  open
    ? `<form method="post" action="/checkoutnow/approve" style="display:inline"><input type="hidden" name="token" value="${esc(o.id)}"><button id="approve" type="submit">Approve</button></form>
<form method="post" action="/checkoutnow/cancel" style="display:inline"><input type="hidden" name="token" value="${esc(o.id)}"><button id="cancel" type="submit">Cancel</button></form>`
    : '<p>This order can no longer be approved.</p>'
}
</body></html>`;
}

/** The vault approval page (`/agreements/approve`): the buyer agrees to save the wallet, no charge now. */
export function vaultApprovalPage(t: { id: string; status: string; description: string | null }): string {
  const open = t.status === 'PAYER_ACTION_REQUIRED';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PayPal sandbox stand-in: save your PayPal for future payments</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}
button{font-size:1.1rem;padding:.6rem 1.4rem;margin-right:.5rem;border-radius:1.5rem;border:0;cursor:pointer}
#approve{background:#ffc439}#cancel{background:#eee}</style></head>
<body><h1>PayPal (sandbox stand-in)</h1>
<p>${esc(t.description ?? 'Save PayPal for future payments to this merchant.')}</p>
<p>You are not charged now.</p>
<p>Setup token <code>${esc(t.id)}</code>: ${esc(t.status)}</p>
${
  open
    ? `<form method="post" action="/agreements/approve" style="display:inline"><input type="hidden" name="approval_session_id" value="${esc(t.id)}"><button id="approve" type="submit">Agree and continue</button></form>
<form method="post" action="/agreements/cancel" style="display:inline"><input type="hidden" name="approval_session_id" value="${esc(t.id)}"><button id="cancel" type="submit">Cancel</button></form>`
    : '<p>This agreement can no longer be approved.</p>'
}
</body></html>`;
}
