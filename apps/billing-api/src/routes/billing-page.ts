import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { HttpApp } from '@billing/service-kit';

/**
 * The buyer's billing page, like Stripe's customer portal: the product's front end
 * links here with the buyer's Auth token in the fragment (`/billing#token=<JWT>`; a fragment
 * never reaches a server or a log), the page keeps it for the tab (sessionStorage) and calls
 * the /v1 API with it. PayPal's return and cancel URLs land here by default (APP_HOME_URL):
 * `?checkout=success` follows the payment until the subscription is active, without a reload.
 */
const CSS = `
*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1b2230}
header{background:#fff;border-bottom:1px solid #e2e5ea;padding:.8rem 1.4rem}header strong{font-size:1.1rem}
main{max-width:860px;margin:0 auto;padding:1.2rem}h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.card{background:#fff;border:1px solid #e2e5ea;border-radius:10px;padding:1rem 1.2rem;margin-bottom:1rem}
.banner{border-radius:8px;padding:.8rem 1rem;margin-bottom:1rem;font-weight:600}
.banner.ok{background:#d3f2dd;color:#0e4d2c}.banner.wait{background:#dde8ff;color:#14306e}.banner.warn{background:#fff0c4;color:#5c4300}.banner.bad{background:#f9d9dc;color:#7c1c26}
table{width:100%;border-collapse:collapse;background:#fff}th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e8ebf0;font-size:.93rem}td.num,th.num{text-align:right}
button{font:inherit;background:#1f3a8a;color:#fff;border:0;border-radius:6px;padding:.45rem 1rem;cursor:pointer}button.secondary{background:#fff;color:#1f3a8a;border:1px solid #1f3a8a}
button:focus,a:focus{outline:3px solid #93b4ff;outline-offset:2px}
.plans{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:.8rem}.plan .price{font-size:1.3rem;font-weight:700}
.muted{color:#5b6372}.badge{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:.82rem;font-weight:600;background:#e4e6ea;color:#343a42}
.badge.active,.badge.completed{background:#d3f2dd;color:#0e4d2c}.badge.failed{background:#f9d9dc;color:#7c1c26}.badge.past_due,.badge.paused{background:#fff0c4;color:#5c4300}.badge.pending{background:#dde8ff;color:#14306e}
`;

/**
 * The page's script (src/page/billing.client.ts): the build compiles it next to the app's bundle
 * (tools/build/build.mjs); run from source (nx serve, the tests), it is compiled here the same way
 * by esbuild, the build's compiler, on the first request.
 */
let script: Promise<string> | undefined;
const PAGE_SCRIPT_BUILD = { bundle: true, format: 'iife', platform: 'browser', target: 'es2020' } as const;
async function pageScript(): Promise<string> {
  try {
    return await readFile(new URL('./public/billing.js', import.meta.url), 'utf8');
  } catch {
    const { build } = await import('esbuild');
    const out = await build({
      ...PAGE_SCRIPT_BUILD,
      entryPoints: [fileURLToPath(new URL('../page/billing.client.ts', import.meta.url))],
      write: false,
      logLevel: 'silent',
    });
    return out.outputFiles[0]!.text;
  }
}

const HTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Billing</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/billing/app.css"></head><body>
<header><strong>Billing</strong> <span id="who" class="muted" hidden></span></header>
<main><h1>Your subscription</h1>
<section id="switch" class="banner warn" role="alertdialog" aria-labelledby="switch-text" hidden><p id="switch-text"></p><p><button type="button" id="switch-yes">Switch account</button> <button type="button" class="secondary" id="switch-no">Stay signed in as before</button></p></section>
<p id="status" class="banner" role="status" aria-live="polite" hidden></p>
<section id="recover" class="card" aria-labelledby="recover-h" hidden><h2 id="recover-h">Update your payment method</h2><p>Your subscription's last renewal could not be charged. Save a PayPal wallet for it: nothing is charged now, and the renewal is tried again once it is saved.</p><p><button type="button" id="recover-go">Update payment method</button></p></section>
<section id="signin" class="card" hidden><h2>Sign in from your account</h2><p>Open this page from your account in the product: it signs you in here.</p></section>
<div id="account" hidden>
<section aria-labelledby="current-h"><h2 id="current-h">Current subscription</h2><div id="subscription"></div></section>
<section id="buy" aria-labelledby="buy-h" hidden><h2 id="buy-h">Plans</h2><p><label for="coupon">Coupon code (optional)</label> <input id="coupon" name="coupon" autocomplete="off" maxlength="64" spellcheck="false"></p><div id="plans" class="plans"></div></section>
<section aria-labelledby="history-h"><h2 id="history-h">Payment history</h2><p id="no-payments" class="muted">No payment yet.</p>
<table id="history" hidden><thead><tr><th scope="col">Date</th><th scope="col">What</th><th scope="col" class="num">Amount</th><th scope="col">Status</th><th scope="col" class="num">Refunded</th><th scope="col">Receipt</th></tr></thead><tbody id="payments"></tbody></table></section>
</div></main><script src="/billing/app.js" defer></script></body></html>`;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export function billingPageRoutes(app: HttpApp): void {
  const headers = {
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
  app.get('/billing', async (_req, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(HTML));
  app.get('/billing/app.js', async (_req, reply) => {
    script ??= pageScript().catch((err: unknown) => {
      script = undefined;
      throw err;
    });
    return reply
      .headers(headers)
      .type('text/javascript; charset=utf-8')
      .send(await script);
  });
  app.get('/billing/app.css', async (_req, reply) => reply.headers(headers).type('text/css; charset=utf-8').send(CSS));
}
