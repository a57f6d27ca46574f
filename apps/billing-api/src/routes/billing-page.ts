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
.badge.active,.badge.completed{background:#d3f2dd;color:#0e4d2c}.badge.failed{background:#f9d9dc;color:#7c1c26}.badge.past_due{background:#fff0c4;color:#5c4300}.badge.pending{background:#dde8ff;color:#14306e}
`;

const JS = `
(function () {
  'use strict';
  var KEY = 'billing_token';
  var $ = function (id) { return document.getElementById(id); };
  // Whose token: its claims, read (not trusted: the API checks it) to name the account on the page.
  function claims(t) {
    try { return JSON.parse(atob(String(t).split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) || {}; }
    catch (e) { return {}; }
  }
  function whoOf(t) { var c = claims(t); return String(c.name || c.email || c.preferred_username || c.sub || 'unknown'); }
  // A link followed while this page is open changes only the fragment: read it as on a fresh load.
  window.addEventListener('hashchange', function () { if (/[#&]token=/.test(location.hash)) location.reload(); });
  var m = /[#&]token=([^&]+)/.exec(location.hash);
  var offered = m ? decodeURIComponent(m[1]) : null;
  if (m) history.replaceState(null, '', location.pathname + location.search);
  var held = sessionStorage.getItem(KEY);
  // A link carrying another user's token never switches the tab silently (login CSRF: a link could
  // make a victim save their wallet on someone else's subscription): the buyer is asked first.
  if (offered && held && claims(offered).sub !== claims(held).sub) {
    text($('switch-text'), 'This link signs you in as ' + whoOf(offered) + '. This page is signed in as ' + whoOf(held) + '.');
    $('switch').hidden = false;
    $('switch-yes').addEventListener('click', function () { sessionStorage.setItem(KEY, offered); location.reload(); });
    $('switch-no').addEventListener('click', function () { $('switch').hidden = true; });
  } else if (offered) sessionStorage.setItem(KEY, offered);
  var token = sessionStorage.getItem(KEY);
  if (token) { text($('who'), 'Signed in as ' + whoOf(token)); $('who').hidden = false; }
  var params = new URLSearchParams(location.search);
  var checkout = params.get('checkout');
  var ZERO = { JPY: 1, HUF: 1, TWD: 1 };
  function money(minor, currency) {
    var digits = ZERO[currency] ? 0 : 2;
    var s = String(Math.abs(minor));
    var value = digits ? (s.length > 2 ? s.slice(0, -2) : '0') + '.' + s.padStart(2, '0').slice(-2) : s;
    try { return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency, minimumFractionDigits: digits }).format(value); }
    catch (e) { return value + ' ' + currency; }
  }
  var UNITS = { Y: 'year', M: 'month', W: 'week', D: 'day', H: 'hour', MIN: 'minute', S: 'second' };
  function every(period) {
    var m = /^P(?:(\\d+)([YMWD])|T(\\d+)([HMS]))$/.exec(period);
    if (!m) return 'every ' + period;
    var n = Number(m[1] || m[3]);
    var unit = UNITS[m[2] || (m[4] === 'M' ? 'MIN' : m[4])];
    return n === 1 ? 'a ' + unit : 'every ' + n + ' ' + unit + 's';
  }
  function when(iso) { return iso ? new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso)) : ''; }
  function text(el, t) { el.textContent = t; return el; }
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === 'text') el.textContent = attrs[k]; else el.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return el;
  }
  function banner(kind, msg) { var b = $('status'); b.className = 'banner ' + kind; text(b, msg); b.hidden = false; }
  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: Object.assign({ authorization: 'Bearer ' + token }, body ? { 'content-type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { if (!r.ok) { var e = new Error(j.detail || j.title || ('HTTP ' + r.status)); e.status = r.status; throw e; } return j; });
    });
  }
  if (checkout === 'cancelled') banner('warn', 'Checkout cancelled: you were not charged.');
  var method = params.get('payment_method');
  if (method === 'saved') banner('ok', 'Payment method saved: it is used from now on.');
  if (method === 'cancelled') banner('warn', 'Payment method not changed.');
  if (!token) {
    if (checkout === 'success') banner('wait', 'Payment received: activating your subscription. Open this page from your account to follow it.');
    $('signin').hidden = false;
    return;
  }
  var startedAt = Date.now();
  function load() {
    return Promise.all([api('GET', '/v1/subscriptions?limit=20'), api('GET', '/v1/payments?limit=50'), fetch('/v1/plans').then(function (r) { return r.json(); })])
      .then(function (all) { render(all[0].items, all[1].items, all[2].items); return all[0].items; })
      .catch(function (e) {
        if (e.status === 401) { sessionStorage.removeItem(KEY); $('signin').hidden = false; banner('bad', 'Your sign-in has expired: open this page from your account again.'); return null; }
        banner('bad', 'Could not load your billing: ' + e.message);
        return null;
      });
  }
  function act(promise, done) {
    promise.then(function () { banner('ok', done); load(); }, function (e) { banner('bad', e.message); });
  }
  function receiptButton(p) {
    if (['completed', 'partially_refunded', 'refunded'].indexOf(p.status) < 0) return null;
    var b = h('button', { type: 'button', class: 'secondary', text: 'Receipt (PDF)' });
    b.addEventListener('click', function () {
      fetch('/v1/payments/' + p.id + '/receipt', { headers: { authorization: 'Bearer ' + token, accept: 'application/pdf' } })
        .then(function (r) { if (!r.ok) throw new Error('no receipt yet'); return r.blob(); })
        .then(function (blob) {
          var a = h('a', { href: URL.createObjectURL(blob), download: 'receipt-' + p.id + '.pdf' });
          document.body.appendChild(a); a.click(); a.remove();
        }, function (e) { banner('bad', e.message); });
    });
    return b;
  }
  function render(subs, payments, plans) {
    var live = subs.filter(function (s) { return s.status === 'active' || s.status === 'past_due' || s.status === 'pending' || s.status === 'trialing'; });
    var box = $('subscription'); box.textContent = '';
    if (!live.length) box.appendChild(h('p', { class: 'muted', text: 'You have no subscription.' }));
    live.forEach(function (s) {
      var plan = plans.filter(function (p) { return p.id === s.planId; })[0];
      var rows = [h('p', {}, [h('strong', { text: (plan ? plan.name : s.planId) + ' ' }), h('span', { class: 'badge ' + s.status, text: s.status.replace('_', ' ') })]),
        h('p', { text: money(s.amount, s.currency) + ' ' + every(s.period) })];
      if (s.status === 'pending') rows.push(h('p', { class: 'muted', text: 'Waiting for your payment at PayPal.' }));
      if (s.status === 'trialing') rows.push(h('p', { text: 'Free trial until ' + when(s.trialEnd) + (s.cancelAtPeriodEnd ? ': it ends then, nothing will be charged.' : ': the first payment is taken then.') }));
      else if (s.currentPeriodEnd) rows.push(h('p', { text: (s.cancelAtPeriodEnd ? 'Ends on ' : 'Renews on ') + when(s.currentPeriodEnd) + ' (current period from ' + when(s.currentPeriodStart) + ')' }));
      if (s.status === 'past_due') rows.push(h('p', { class: 'banner warn', text: 'Your last renewal payment failed; we will try again.' }));
      if (s.status === 'active' || s.status === 'past_due' || s.status === 'trialing') {
        var btn = s.cancelAtPeriodEnd
          ? h('button', { type: 'button', 'data-action': 'resume', text: 'Resume subscription' })
          : h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel', text: s.status === 'trialing' ? 'Cancel at trial end' : 'Cancel at period end' });
        btn.addEventListener('click', function () {
          if (s.cancelAtPeriodEnd) act(api('POST', '/v1/subscriptions/' + s.id + '/resume'), 'Resumed: your subscription renews as before.');
          else if (confirm('Cancel at the end of the current period? You keep access until then.'))
            act(api('POST', '/v1/subscriptions/' + s.id + '/cancel', { mode: 'at_period_end' }), 'Cancelled: your subscription ends at the period end.');
        });
        rows.push(btn);
        var pm = h('button', { type: 'button', class: 'secondary', 'data-action': 'payment-method', text: 'Update payment method' });
        pm.addEventListener('click', function () {
          if (!confirm('Save a PayPal wallet for the subscription of ' + whoOf(token) + '? It will pay the renewals of that account.')) return;
          pm.disabled = true;
          api('POST', '/v1/subscriptions/' + s.id + '/payment-method').then(function (r) { location.assign(r.approvalUrl); }, function (e) { pm.disabled = false; banner('bad', e.message); });
        });
        rows.push(document.createTextNode(' '));
        rows.push(pm);
      }
      box.appendChild(h('div', { class: 'card', 'data-subscription': s.id }, rows));
    });
    var buy = $('plans'); buy.textContent = '';
    var roles = live.map(function (s) { return s.role; });
    plans.filter(function (p) { return roles.indexOf(p.role) < 0; }).forEach(function (p) {
      var b = h('button', { type: 'button', text: 'Subscribe' });
      b.addEventListener('click', function () {
        b.disabled = true;
        api('POST', '/v1/subscriptions', { planId: p.id }).then(function (r) { location.assign(r.approvalUrl); }, function (e) { b.disabled = false; banner('bad', e.message); });
      });
      buy.appendChild(h('div', { class: 'card plan' }, [h('h3', { text: p.name }), h('p', { class: 'muted', text: p.description }), h('p', { class: 'price', text: money(p.amount, p.currency) + ' ' + every(p.period) + (p.trialPeriod ? ' after a free trial (' + p.trialPeriod + ')' : '') }), b]));
    });
    $('buy').hidden = buy.childNodes.length === 0;
    var tbody = $('payments'); tbody.textContent = '';
    payments.forEach(function (p) {
      tbody.appendChild(h('tr', {}, [h('td', { text: when(p.createdAt) }), h('td', { text: p.kind === 'initial' ? 'First payment' : 'Renewal' }),
        h('td', { class: 'num', text: money(p.amount, p.currency) }), h('td', {}, [h('span', { class: 'badge ' + p.status, text: p.status.replace('_', ' ') })]),
        h('td', { class: 'num', text: p.refundedAmount ? money(p.refundedAmount, p.currency) : '' }), h('td', {}, [receiptButton(p)])]));
    });
    $('no-payments').hidden = payments.length > 0;
    $('history').hidden = payments.length === 0;
  }
  function follow() {
    load().then(function (subs) {
      if (!subs || checkout !== 'success') return;
      var newest = subs[0];
      if (newest && newest.status === 'active') { banner('ok', 'Payment received: your subscription is active.'); return; }
      if (newest && newest.status === 'trialing') { banner('ok', 'Your free trial has started: nothing is charged until ' + when(newest.trialEnd) + '.'); return; }
      if (newest && newest.status === 'cancelled') { banner('bad', 'The payment did not go through: you were not charged.'); return; }
      banner('wait', 'Payment received: activating your subscription…');
      if (Date.now() - startedAt < 120000) setTimeout(follow, 1000);
    });
  }
  $('account').hidden = false;
  follow();
})();
`;

const HTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Billing</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/billing/app.css"></head><body>
<header><strong>Billing</strong> <span id="who" class="muted" hidden></span></header>
<main><h1>Your subscription</h1>
<section id="switch" class="banner warn" role="alertdialog" aria-labelledby="switch-text" hidden><p id="switch-text"></p><p><button type="button" id="switch-yes">Switch account</button> <button type="button" class="secondary" id="switch-no">Stay signed in as before</button></p></section>
<p id="status" class="banner" role="status" aria-live="polite" hidden></p>
<section id="signin" class="card" hidden><h2>Sign in from your account</h2><p>Open this page from your account in the product: it signs you in here.</p></section>
<div id="account" hidden>
<section aria-labelledby="current-h"><h2 id="current-h">Current subscription</h2><div id="subscription"></div></section>
<section id="buy" aria-labelledby="buy-h" hidden><h2 id="buy-h">Plans</h2><div id="plans" class="plans"></div></section>
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
  app.get('/billing/app.js', async (_req, reply) =>
    reply.headers(headers).type('text/javascript; charset=utf-8').send(JS),
  );
  app.get('/billing/app.css', async (_req, reply) => reply.headers(headers).type('text/css; charset=utf-8').send(CSS));
}
