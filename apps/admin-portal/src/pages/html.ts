import { minorDigits, toPayPalAmount } from '@billing/domain';

/**
 * Markup that is safe to send: built by the `html` tag, which escapes every value interpolated
 * into it unless that value is itself `Html`. The class is nominal (its constructor is private),
 * so a plain string can never be passed where markup is expected: text reaches a page escaped, or
 * through `html` written in the source (docs/admin.md, pages).
 */
export class Html {
  private constructor(private readonly text: string) {}
  /** Only this module makes Html: through `html`, `esc` and `joinHtml`. */
  static trusted(text: string): Html {
    return new Html(text);
  }
  get isEmpty(): boolean {
    return this.text === '';
  }
  toString(): string {
    return this.text;
  }
}

/** What `html` takes: markup as it is, anything else escaped, lists joined, null/undefined/false as nothing. */
export type Part = Html | string | number | bigint | boolean | null | undefined | readonly Part[];

const escText = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function render(v: Part): string {
  if (v instanceof Html) return v.toString();
  if (Array.isArray(v)) return (v as readonly Part[]).map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return escText(String(v));
}

/** The template tag of every page: `html\`<td>${text}</td>\`` escapes `text`, keeps nested `html`. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + (strings[i + 1] ?? '');
  return Html.trusted(out);
}

/** Any value as escaped text (for text and attribute positions). */
export const esc = (v: unknown): Html => Html.trusted(escText(String(v ?? '')));

/** Markup pieces with a separator between them (`html` alone joins lists with nothing). */
export const joinHtml = (parts: readonly Part[], separator: Html): Html =>
  Html.trusted(parts.map(render).join(separator.toString()));

/** Minor units as the currency shows them: `$4.99`, `¥500`, `€12.00`; exact (decimal strings, no float). */
export function money(amount: number | null | undefined, currency: string): Html {
  if (amount === null || amount === undefined) return html``;
  try {
    const value = toPayPalAmount(Math.abs(amount), currency).value;
    const text = new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency,
      minimumFractionDigits: minorDigits(currency),
    }).format(value as unknown as number);
    return esc(amount < 0 ? `−${text}` : text);
  } catch {
    return html`${amount} ${currency}`;
  }
}

/** Minor units as the decimal an operator types (`4.99`, `500`). */
export const major = (amount: number, currency: string): string => toPayPalAmount(amount, currency).value;

/** Nothing to show. */
export const none = (): Html => html`<span class="muted">—</span>`;

/** A UTC instant, shown in the operator's zone by /assets/portal.js (UTC without it). */
export function time(iso: string | null | undefined): Html {
  if (!iso) return none();
  const utc = iso
    .replace('T', ' ')
    .replace(/(:\d{2})\.\d+Z$/, '$1')
    .replace(/Z$/, '');
  return html`<time datetime="${iso}" title="UTC ${utc}">${utc.slice(0, 16)} UTC</time>`;
}

const TONE: Record<string, string> = {
  active: 'ok',
  completed: 'ok',
  replayed: 'ok',
  approved: 'info',
  pending: 'info',
  created: 'info',
  trialing: 'info',
  paused: 'warn',
  past_due: 'warn',
  partially_refunded: 'warn',
  open: 'warn',
  requested: 'info',
  failed: 'bad',
  reversed: 'bad',
  refunded: 'idle',
  cancelled: 'idle',
  expired: 'idle',
  discarded: 'idle',
  applied: 'ok',
  scheduled: 'info',
  dropped: 'idle',
};

/** A state as a coloured badge; `label` when the words shown differ from the state's name. */
export const badge = (status: string | null | undefined, label?: string): Html =>
  status ? html`<span class="badge b-${TONE[status] ?? 'idle'}">${label ?? status.replace(/_/g, ' ')}</span>` : html``;

/** A state's badge with the reason it failed, if any. */
export const stateWithReason = (status: string, reason: string | null | undefined): Html =>
  html`${badge(status)}${reason ? html` <span class="muted">${reason}</span>` : ''}`;

/** From one instant to another (a period), or nothing. */
export const span = (from: string | null | undefined, to: string | null | undefined): Html =>
  from ? html`${time(from)} – ${time(to)}` : html``;

export const userLink = (userId: string): Html => html`<a href="/users/${encodeURIComponent(userId)}">${userId}</a>`;
export const shortId = (id: string): string => id.slice(0, 8);
export const link = (href: string, text: string): Html => html`<a href="${href}">${text}</a>`;

export interface Column<T> {
  head: string;
  cell: (row: T) => Html;
  num?: boolean;
}

/** A table, or an empty state saying what is missing. */
export function table<T>(label: string, columns: Column<T>[], rows: T[], empty: string): Html {
  if (rows.length === 0) return html`<p class="empty" role="status">${empty}</p>`;
  const num = (c: Column<T>) => (c.num ? html` class="num"` : html``);
  return html`<table aria-label="${label}"><thead><tr>${columns.map(
    (c) => html`<th scope="col"${num(c)}>${c.head}</th>`,
  )}</tr></thead><tbody>${rows.map(
    (r) => html`<tr>${columns.map((c) => html`<td${num(c)}>${c.cell(r)}</td>`)}</tr>`,
  )}</tbody></table>`;
}

export const facts = (pairs: [string, Html][]): Html =>
  html`<dl class="facts">${pairs.map(([k, v]) => html`<dt>${k}</dt><dd>${v.isEmpty ? none() : v}</dd>`)}</dl>`;

export type Query = Record<string, string | undefined>;

/** The query without empty values, as a string for a link. */
export function qs(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v) p.set(k, v);
  // `?` alone, not an empty href (which would be this very page): the list without a query.
  return `?${p.toString()}`;
}

export interface FilterField {
  name: string;
  label: string;
  type?: 'text' | 'date' | 'search';
  options?: [string, string][];
}

/** A filter form whose controls keep the values searched for. */
export function filters(fields: FilterField[], q: Query): Html {
  return html`<form class="filters" method="get" role="search">${fields.map((f) => {
    const v = q[f.name] ?? '';
    const id = `f-${f.name}`;
    const control = f.options
      ? html`<select id="${id}" name="${f.name}">${f.options.map(
          ([val, text]) => html`<option value="${val}"${val === v ? html` selected` : html``}>${text}</option>`,
        )}</select>`
      : html`<input id="${id}" name="${f.name}" type="${f.type ?? 'text'}" value="${v}">`;
    return html`<label for="${id}">${f.label}${control}</label>`;
  })}<button>Search</button> <a class="button secondary" href="?">Clear</a></form>`;
}

/**
 * Cursor paging both ways: `cursor` is where this page starts, `back` the starts of the pages
 * before it (cursors hold no comma; `-` is the first page).
 */
export function pager(q: Query, nextCursor: string | null): Html {
  const back = q['back'] ? q['back'].split(',') : [];
  const here = q['cursor'] ?? '-';
  const start = back[back.length - 1];
  const prev =
    start !== undefined
      ? html`<a rel="prev" href="${qs({ ...q, cursor: start === '-' ? undefined : start, back: back.slice(0, -1).join(',') || undefined })}">← Previous</a>`
      : html`<span class="disabled">← Previous</span>`;
  const next = nextCursor
    ? html`<a rel="next" href="${qs({ ...q, cursor: nextCursor, back: [...back, here].join(',') })}">Next →</a>`
    : html`<span class="disabled">Next →</span>`;
  return html`<nav class="pager" aria-label="Pages">${prev}${next}</nav>`;
}

/** before → after of an audit entry, key by key. */
export function diff(before: unknown, after: unknown): Html {
  const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
  const b = obj(before);
  const a = obj(after);
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  if (!b && !a) return none();
  if (!b || !a)
    return html`<div class="diff">${b ? html`<del>${show(before)}</del>` : ''}${a ? html`<ins>${show(after)}</ins>` : ''}</div>`;
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  const rows = keys
    .filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
    .map(
      (k) =>
        html`<div><code>${k}</code>: ${k in b ? html`<del>${show(b[k])}</del>` : ''} → ${k in a ? html`<ins>${show(a[k])}</ins>` : ''}</div>`,
    );
  return html`<div class="diff">${rows.length ? rows : html`<span class="muted">no change</span>`}</div>`;
}

/** An audit target (`payment:<id>`) as a link to its page. */
export function targetLink(target: string): Html {
  const [kind, id = ''] = target.split(/:(.*)/s);
  const href =
    kind === 'payment'
      ? `/payments/${encodeURIComponent(id)}`
      : kind === 'subscription'
        ? `/subscriptions/${encodeURIComponent(id)}`
        : kind === 'user'
          ? `/users/${encodeURIComponent(id)}`
          : kind === 'coupon'
            ? '/coupons'
            : kind === 'plan'
              ? `/plans/${encodeURIComponent(id)}/edit`
              : kind === 'dead-letter'
                ? `/dead-letters/${encodeURIComponent(id)}`
                : null;
  const text = kind && id.length > 12 && /^[0-9a-f-]{36}$/.test(id) ? `${kind}:${shortId(id)}` : target;
  return href ? link(href, text) : esc(target);
}
