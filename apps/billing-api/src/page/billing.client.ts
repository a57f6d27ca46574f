/**
 * The buyer's billing page's script (docs/api.md, the billing page), run in the browser: compiled
 * by the build to `dist/billing-api/public/billing.js` (tools/build/build.mjs), or from this source
 * when billing-api runs from source. It reads the Auth token from the fragment, keeps it for the
 * tab, and calls the /v1 API with it. Its answers are typed from the API's own schemas.
 */
import type { Static } from 'typebox';
import type { PaymentSchema, PlanSchema, RetentionOfferSchema, SubscriptionSchema } from '@billing/http-api';
import { CANCEL_REASONS } from '@billing/domain';

type Plan = Static<typeof PlanSchema>;
type Subscription = Static<typeof SubscriptionSchema>;
type Payment = Static<typeof PaymentSchema>;
type Offer = Static<typeof RetentionOfferSchema>;
type Claims = { sub?: string; name?: string; email?: string; preferred_username?: string };
class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const KEY = 'billing_token';
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

// Whose token: its claims, read (not trusted: the API checks it) to name the account on the page.
function claims(t: string): Claims {
  try {
    return (JSON.parse(atob(String(t).split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as Claims) || {};
  } catch {
    return {};
  }
}
function whoOf(t: string): string {
  const c = claims(t);
  return String(c.name || c.email || c.preferred_username || c.sub || 'unknown');
}
function text<T extends HTMLElement>(el: T, t: string): T {
  el.textContent = t;
  return el;
}
function h(tag: string, attrs: Record<string, string> = {}, children: (Node | string | null)[] = []): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}
function banner(kind: 'ok' | 'wait' | 'warn' | 'bad', msg: string): void {
  const b = $('status');
  b.className = `banner ${kind}`;
  text(b, msg);
  b.hidden = false;
}

const ZERO_DECIMAL: Record<string, true> = { JPY: true, HUF: true, TWD: true };
function money(minor: number, currency: string): string {
  const digits = ZERO_DECIMAL[currency] ? 0 : 2;
  const s = String(Math.abs(minor));
  const value = digits ? `${s.length > 2 ? s.slice(0, -2) : '0'}.${s.padStart(2, '0').slice(-2)}` : s;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: digits }).format(
      Number(value),
    );
  } catch {
    return `${value} ${currency}`;
  }
}
const UNITS: Record<string, string> = {
  Y: 'year',
  M: 'month',
  W: 'week',
  D: 'day',
  H: 'hour',
  MIN: 'minute',
  S: 'second',
};
function every(period: string): string {
  const m = /^P(?:(\d+)([YMWD])|T(\d+)([HMS]))$/.exec(period);
  if (!m) return `every ${period}`;
  const n = Number(m[1] || m[3]);
  const unit = UNITS[m[2] || (m[4] === 'M' ? 'MIN' : m[4]!)]!;
  return n === 1 ? `a ${unit}` : `every ${n} ${unit}s`;
}
function when(iso: string | null): string {
  return iso
    ? new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))
    : '';
}

/**
 * A recovery link from an e-mail (docs/api.md, recovery links): the page offers to replace that
 * subscription's payment method, signing nobody in. The token leaves the address bar at once.
 */
function recovery(token: string): void {
  history.replaceState(null, '', location.pathname);
  $('recover').hidden = false;
  const go = $<HTMLButtonElement>('recover-go');
  go.addEventListener('click', () => {
    go.disabled = true;
    fetch('/v1/recovery/payment-method', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    })
      .then(async (r) => {
        const j = (await r.json().catch(() => ({}))) as { approvalUrl?: string; detail?: string };
        if (!r.ok || !j.approvalUrl) throw new Error(j.detail || `HTTP ${r.status}`);
        location.assign(j.approvalUrl);
      })
      .catch((e: Error) => {
        go.disabled = false;
        banner('bad', e.message);
      });
  });
}

function main(): void {
  const recover = new URLSearchParams(location.search).get('recover');
  if (recover) return recovery(recover);
  // A link followed while this page is open changes only the fragment: read it as on a fresh load.
  window.addEventListener('hashchange', () => {
    if (/[#&]token=/.test(location.hash)) location.reload();
  });
  const m = /[#&]token=([^&]+)/.exec(location.hash);
  const offered = m ? decodeURIComponent(m[1]!) : null;
  if (m) history.replaceState(null, '', location.pathname + location.search);
  const held = sessionStorage.getItem(KEY);
  // A link carrying another user's token never switches the tab silently (login CSRF: a link could
  // make a victim save their wallet on someone else's subscription): the buyer is asked first.
  if (offered && held && claims(offered).sub !== claims(held).sub) {
    text($('switch-text'), `This link signs you in as ${whoOf(offered)}. This page is signed in as ${whoOf(held)}.`);
    $('switch').hidden = false;
    $('switch-yes').addEventListener('click', () => {
      sessionStorage.setItem(KEY, offered);
      location.reload();
    });
    $('switch-no').addEventListener('click', () => {
      $('switch').hidden = true;
    });
  } else if (offered) sessionStorage.setItem(KEY, offered);
  const token = sessionStorage.getItem(KEY);
  if (token) {
    text($('who'), `Signed in as ${whoOf(token)}`);
    $('who').hidden = false;
  }
  const params = new URLSearchParams(location.search);
  const checkout = params.get('checkout');
  if (checkout === 'cancelled') banner('warn', 'Checkout cancelled: you were not charged.');
  const method = params.get('payment_method');
  if (method === 'saved') banner('ok', 'Payment method saved: it is used from now on.');
  if (method === 'cancelled') banner('warn', 'Payment method not changed.');
  if (!token) {
    if (checkout === 'success')
      banner('wait', 'Payment received: activating your subscription. Open this page from your account to follow it.');
    $('signin').hidden = false;
    return;
  }
  const bearer = token;

  async function api<T>(verb: 'GET' | 'POST', path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
    const r = await fetch(path, {
      method: verb,
      headers: {
        authorization: `Bearer ${bearer}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      body: body ? JSON.stringify(body) : null,
    });
    const j = (await r.json().catch(() => ({}))) as { detail?: string; title?: string };
    if (!r.ok) throw new ApiError(j.detail || j.title || `HTTP ${r.status}`, r.status);
    return j as T;
  }
  const startedAt = Date.now();

  async function load(): Promise<Subscription[] | null> {
    try {
      const [subs, payments, plans] = await Promise.all([
        api<{ items: Subscription[] }>('GET', '/v1/subscriptions?limit=20'),
        api<{ items: Payment[] }>('GET', '/v1/payments?limit=50'),
        fetch('/v1/plans').then((r) => r.json() as Promise<{ items: Plan[] }>),
      ]);
      render(subs.items, payments.items, plans.items);
      return subs.items;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        sessionStorage.removeItem(KEY);
        $('signin').hidden = false;
        banner('bad', 'Your sign-in has expired: open this page from your account again.');
        return null;
      }
      banner('bad', `Could not load your billing: ${(e as Error).message}`);
      return null;
    }
  }
  function act(promise: Promise<unknown>, done: string): void {
    promise.then(
      () => {
        banner('ok', done);
        void load();
      },
      (e: Error) => banner('bad', e.message),
    );
  }
  function receiptButton(p: Payment): HTMLElement | null {
    if (!['completed', 'partially_refunded', 'refunded'].includes(p.status)) return null;
    const b = h('button', { type: 'button', class: 'secondary', text: 'Receipt (PDF)' });
    b.addEventListener('click', () => {
      fetch(`/v1/payments/${p.id}/receipt`, {
        headers: { authorization: `Bearer ${bearer}`, accept: 'application/pdf' },
      })
        .then((r) => {
          if (!r.ok) throw new Error('no receipt yet');
          return r.blob();
        })
        .then(
          (blob) => {
            const a = h('a', { href: URL.createObjectURL(blob), download: `receipt-${p.id}.pdf` });
            document.body.appendChild(a);
            a.click();
            a.remove();
          },
          (e: Error) => banner('bad', e.message),
        );
    });
    return b;
  }
  /** Leaves for PayPal's approval page the API answered, or says why not. */
  function toPayPal(button: HTMLButtonElement, call: Promise<{ approvalUrl: string }>): void {
    button.disabled = true;
    call.then(
      (r) => location.assign(r.approvalUrl),
      (e: Error) => {
        button.disabled = false;
        banner('bad', e.message);
      },
    );
  }
  function subscriptionCard(s: Subscription, plans: Plan[]): HTMLElement {
    const plan = plans.find((p) => p.id === s.planId);
    const rows: (Node | string)[] = [
      h('p', {}, [
        h('strong', { text: `${plan ? plan.name : s.planId} ` }),
        h('span', { class: `badge ${s.status}`, text: s.status.replace('_', ' ') }),
      ]),
      h('p', { text: `${money(s.amount, s.currency)} ${every(s.period)}` }),
    ];
    if (s.status === 'pending') rows.push(h('p', { class: 'muted', text: 'Waiting for your payment at PayPal.' }));
    if (s.status === 'trialing')
      rows.push(
        h('p', {
          text: `Free trial until ${when(s.trialEnd)}${s.cancelAtPeriodEnd ? ': it ends then, nothing will be charged.' : ': the first payment is taken then.'}`,
        }),
      );
    else if (s.currentPeriodEnd && s.status !== 'paused')
      rows.push(
        h('p', {
          text: `${s.cancelAtPeriodEnd ? 'Ends on ' : 'Renews on '}${when(s.currentPeriodEnd)} (current period from ${when(s.currentPeriodStart)})`,
        }),
      );
    if (s.status === 'past_due')
      rows.push(h('p', { class: 'banner warn', text: 'Your last renewal payment failed; we will try again.' }));
    if (s.status === 'active' || s.status === 'past_due' || s.status === 'trialing') {
      const btn = s.cancelAtPeriodEnd
        ? h('button', { type: 'button', 'data-action': 'resume', text: 'Resume subscription' })
        : h('button', {
            type: 'button',
            class: 'secondary',
            'data-action': 'cancel',
            text: s.status === 'trialing' ? 'Cancel at trial end' : 'Cancel at period end',
          });
      // docs/api.md, cancel: why the buyer leaves, from a list (optional).
      const why = h('select', { id: `why-${s.id}` }, [
        h('option', { value: '', text: 'Choose one (optional)' }),
        ...Object.entries(CANCEL_REASONS).map(([value, text]) => h('option', { value, text })),
      ]) as HTMLSelectElement;
      const cancel = () =>
        act(
          api('POST', `/v1/subscriptions/${s.id}/cancel`, {
            mode: 'at_period_end',
            ...(why.value ? { reason: why.value } : {}),
          }),
          'Cancelled: your subscription ends at the period end.',
        );
      btn.addEventListener('click', () => {
        if (s.cancelAtPeriodEnd) {
          act(api('POST', `/v1/subscriptions/${s.id}/resume`), 'Resumed: your subscription renews as before.');
          return;
        }
        // docs/api.md, retention offer: asked for once; none goes straight on to the cancel.
        api<{ offer: Offer | null }>('POST', `/v1/subscriptions/${s.id}/retention-offer`).then(
          ({ offer }) => {
            if (offer) card.replaceChildren(...offerPanel(s, offer, cancel));
            else if (confirm('Cancel at the end of the current period? You keep access until then.')) cancel();
          },
          (e: Error) => banner('bad', e.message),
        );
      });
      if (!s.cancelAtPeriodEnd)
        rows.push(h('p', {}, [h('label', { for: `why-${s.id}`, text: 'Why are you cancelling? ' }), why]));
      rows.push(btn);
      const pm = h('button', {
        type: 'button',
        class: 'secondary',
        'data-action': 'payment-method',
        text: 'Update payment method',
      }) as HTMLButtonElement;
      pm.addEventListener('click', () => {
        if (
          !confirm(
            `Save a PayPal wallet for the subscription of ${whoOf(bearer)}? It will pay the renewals of that account.`,
          )
        )
          return;
        toPayPal(pm, api('POST', `/v1/subscriptions/${s.id}/payment-method`));
      });
      rows.push(' ', pm);
    }
    if (s.status === 'active' && !s.cancelAtPeriodEnd) rows.push(pauseControls(s), planChange(s, plans));
    if (s.status === 'paused') {
      // docs/api.md, pause and resume: nothing is charged meanwhile; the time left comes back at the resume.
      rows.push(
        h('p', {
          text: `Paused since ${when(s.pausedAt)}. It resumes by itself on ${when(s.resumesAt)}; the time left in your period is given back then.`,
        }),
      );
      const resume = h('button', { type: 'button', 'data-action': 'unpause', text: 'Resume now' });
      resume.addEventListener('click', () =>
        act(api('POST', `/v1/subscriptions/${s.id}/resume`), 'Resumed: your access is back.'),
      );
      rows.push(resume);
    }
    const card = h('div', { class: 'card', 'data-subscription': s.id }, rows);
    return card;
  }
  /** The retention offer, shown once: accept it, or cancel anyway. */
  function offerPanel(s: Subscription, o: Offer, cancel: () => void): (HTMLElement | string)[] {
    const off =
      o.percentOff !== null ? `${o.percentOff}% off` : `${money(o.amountOff ?? 0, o.currency ?? s.currency)} off`;
    const span = o.durationPeriods === null ? 'every period' : `${o.durationPeriods} period(s)`;
    const accept = h('button', { type: 'button', 'data-action': 'accept-offer', text: 'Accept the offer' });
    accept.addEventListener('click', () =>
      act(api('POST', `/v1/subscriptions/${s.id}/retention-offer/accept`), 'Offer accepted: thank you for staying.'),
    );
    const leave = h('button', {
      type: 'button',
      class: 'secondary',
      'data-action': 'cancel-anyway',
      text: 'Cancel anyway',
    });
    leave.addEventListener('click', cancel);
    return [
      h('h3', { text: 'Before you go' }),
      h('p', {
        text: `Stay and get ${off} for ${span}, from ${when(o.fromPeriodStart)}: ${money(o.price, s.currency)} instead of ${money(s.amount, s.currency)}. This offer is made once.`,
      }),
      accept,
      ' ',
      leave,
    ];
  }
  /** Pause an active subscription until a date (empty: the longest pause the plan allows). */
  function pauseControls(s: Subscription): HTMLElement {
    const until = h('input', { id: `pause-until-${s.id}`, type: 'date' }) as HTMLInputElement;
    const btn = h('button', { type: 'button', class: 'secondary', 'data-action': 'pause', text: 'Pause subscription' });
    btn.addEventListener('click', () => {
      if (
        !confirm('Pause now? Nothing is charged and your access stops until the resume; the time left comes back then.')
      )
        return;
      act(
        api('POST', `/v1/subscriptions/${s.id}/pause`, until.value ? { resumesAt: `${until.value}T00:00:00Z` } : {}),
        'Paused: nothing is charged until it resumes.',
      );
    });
    return h('fieldset', {}, [
      h('legend', { text: 'Pause' }),
      h('label', { for: until.id, text: 'Resume on (optional) ' }),
      until,
      ' ',
      btn,
    ]);
  }
  /**
   * Another plan for an active subscription (docs/api.md, plan changes): the plans on sale in its
   * currency, what the change would charge now and when it takes effect (the API's preview), then
   * the change itself, confirmed once (one idempotency key per preview: a double click asks once).
   */
  function planChange(s: Subscription, plans: Plan[]): HTMLElement {
    const others = plans.filter((p) => p.id !== s.planId && p.currency === s.currency);
    const box = h('div', { class: 'change' });
    if (s.scheduledChange) {
      const to = plans.find((p) => p.id === s.scheduledChange!.planId);
      box.appendChild(
        h('p', {
          'data-scheduled': '',
          text: `Changes to ${to ? to.name : s.scheduledChange.planId} on ${when(s.scheduledChange.effectiveAt)}.`,
        }),
      );
    }
    if (!others.length) return box;
    const id = `change-${s.id}`;
    const select = h(
      'select',
      { id },
      others.map((p) =>
        h('option', { value: p.id, text: `${p.name}: ${money(p.amount, p.currency)} ${every(p.period)}` }),
      ),
    ) as HTMLSelectElement;
    const preview = h('button', {
      type: 'button',
      class: 'secondary',
      text: 'Preview plan change',
    }) as HTMLButtonElement;
    const quote = h('p', { 'data-preview': '', role: 'status', 'aria-live': 'polite' });
    const confirmBtn = h('button', { type: 'button', text: 'Confirm plan change', hidden: '' }) as HTMLButtonElement;
    let key = '';
    const reset = () => {
      quote.textContent = '';
      confirmBtn.hidden = true;
    };
    select.addEventListener('change', reset);
    preview.addEventListener('click', () => {
      reset();
      const planId = select.value;
      api<{ effectiveAt: string; amountDueNow: number; currency: string }>(
        'GET',
        `/v1/subscriptions/${s.id}/change?planId=${encodeURIComponent(planId)}`,
      ).then(
        (q) => {
          key = crypto.randomUUID();
          const at = Date.parse(q.effectiveAt) <= Date.now() + 60_000 ? 'now' : `on ${when(q.effectiveAt)}`;
          quote.textContent = q.amountDueNow
            ? `${money(q.amountDueNow, q.currency)} is charged now to your saved PayPal wallet; the new plan starts ${at}.`
            : `Nothing to pay now; the new plan starts ${at}.`;
          confirmBtn.hidden = false;
        },
        (e: Error) => banner('bad', e.message),
      );
    });
    confirmBtn.addEventListener('click', () => {
      confirmBtn.disabled = true;
      api<{ paymentId: string | null; subscription: Subscription }>(
        'POST',
        `/v1/subscriptions/${s.id}/change`,
        { planId: select.value },
        key,
      ).then(
        (r) => {
          const scheduled = r.subscription.scheduledChange;
          banner(
            'ok',
            r.paymentId
              ? 'Plan change requested: the difference is being charged, and the new plan starts once it is paid.'
              : scheduled
                ? `Plan change scheduled for ${when(scheduled.effectiveAt)}.`
                : 'Plan changed.',
          );
          void load();
        },
        (e: Error) => {
          confirmBtn.disabled = false;
          banner('bad', e.message);
        },
      );
    });
    box.append(h('label', { for: id, text: 'Change plan to ' }), select, ' ', preview, quote, confirmBtn);
    return box;
  }
  function render(subs: Subscription[], payments: Payment[], plans: Plan[]): void {
    const live = subs.filter((s) => ['active', 'past_due', 'pending', 'trialing', 'paused'].includes(s.status));
    const box = $('subscription');
    box.textContent = '';
    if (!live.length) box.appendChild(h('p', { class: 'muted', text: 'You have no subscription.' }));
    for (const s of live) box.appendChild(subscriptionCard(s, plans));
    const buy = $('plans');
    buy.textContent = '';
    const roles = live.map((s) => s.role);
    for (const p of plans.filter((plan) => !roles.includes(plan.role))) {
      const b = h('button', { type: 'button', text: 'Subscribe' }) as HTMLButtonElement;
      b.addEventListener('click', () => {
        // docs/api.md, coupons at checkout: the code typed, if any, goes with the purchase.
        const couponCode = $<HTMLInputElement>('coupon').value.trim();
        toPayPal(b, api('POST', '/v1/subscriptions', { planId: p.id, ...(couponCode ? { couponCode } : {}) }));
      });
      buy.appendChild(
        h('div', { class: 'card plan' }, [
          h('h3', { text: p.name }),
          h('p', { class: 'muted', text: p.description }),
          h('p', {
            class: 'price',
            text: `${money(p.amount, p.currency)} ${every(p.period)}${p.trialPeriod ? ` after a free trial (${p.trialPeriod})` : ''}`,
          }),
          b,
        ]),
      );
    }
    $('buy').hidden = buy.childNodes.length === 0;
    const tbody = $('payments');
    tbody.textContent = '';
    for (const p of payments)
      tbody.appendChild(
        h('tr', {}, [
          h('td', { text: when(p.createdAt) }),
          h('td', { text: p.kind === 'initial' ? 'First payment' : p.kind === 'upgrade' ? 'Plan change' : 'Renewal' }),
          h('td', { class: 'num', text: money(p.amount, p.currency) }),
          h('td', {}, [h('span', { class: `badge ${p.status}`, text: p.status.replace('_', ' ') })]),
          h('td', { class: 'num', text: p.refundedAmount ? money(p.refundedAmount, p.currency) : '' }),
          h('td', {}, [receiptButton(p)]),
        ]),
      );
    $('no-payments').hidden = payments.length > 0;
    $('history').hidden = payments.length === 0;
  }
  function follow(): void {
    void load().then((subs) => {
      if (!subs || checkout !== 'success') return;
      const newest = subs[0];
      // The three reads of `load` are not one snapshot: the payments may have been read just before
      // the capture committed. Once the subscription is seen active, the history is read again.
      if (newest && newest.status === 'active') {
        banner('ok', 'Payment received: your subscription is active.');
        return void load();
      }
      if (newest && newest.status === 'trialing')
        return banner('ok', `Your free trial has started: nothing is charged until ${when(newest.trialEnd)}.`);
      if (newest && newest.status === 'cancelled')
        return banner('bad', 'The payment did not go through: you were not charged.');
      banner('wait', 'Payment received: activating your subscription…');
      if (Date.now() - startedAt < 120_000) setTimeout(follow, 1000);
    });
  }
  $('account').hidden = false;
  follow();
}

main();
