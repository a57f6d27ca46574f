import { minorDigits, toPayPalAmount } from '@billing/domain';

/** HTML-escapes anything for text and attribute positions. */
export const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Marks a string as already-safe HTML (for composition). */
export type Html = string;

/** Minor units as the currency shows them: `$4.99`, `¥500`, `€12.00`; exact (decimal strings, no float). */
export function money(amount: number | null | undefined, currency: string): Html {
  if (amount === null || amount === undefined) return '';
  try {
    const value = toPayPalAmount(Math.abs(amount), currency).value;
    const text = new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency,
      minimumFractionDigits: minorDigits(currency),
    }).format(value as unknown as number);
    return esc(amount < 0 ? `−${text}` : text);
  } catch {
    return `${esc(amount)} ${esc(currency)}`;
  }
}

/** Minor units as the decimal an operator types (`4.99`, `500`). */
export const major = (amount: number, currency: string): string => toPayPalAmount(amount, currency).value;

/** A UTC instant, shown in the operator's zone by /assets/portal.js (UTC without it). */
export function time(iso: string | null | undefined): Html {
  if (!iso) return '<span class="muted">—</span>';
  const utc = iso
    .replace('T', ' ')
    .replace(/(:\d{2})\.\d+Z$/, '$1')
    .replace(/Z$/, '');
  return `<time datetime="${esc(iso)}" title="UTC ${esc(utc)}">${esc(utc.slice(0, 16))} UTC</time>`;
}

const TONE: Record<string, string> = {
  active: 'ok',
  completed: 'ok',
  replayed: 'ok',
  approved: 'info',
  pending: 'info',
  created: 'info',
  trialing: 'info',
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

export const badge = (status: string | null | undefined): Html =>
  status ? `<span class="badge b-${TONE[status] ?? 'idle'}">${esc(status.replace(/_/g, ' '))}</span>` : '';

export const userLink = (userId: string): Html => `<a href="/users/${encodeURIComponent(userId)}">${esc(userId)}</a>`;
export const shortId = (id: string): string => id.slice(0, 8);
export const link = (href: string, text: string): Html => `<a href="${esc(href)}">${esc(text)}</a>`;

export interface Column<T> {
  head: string;
  cell: (row: T) => Html;
  num?: boolean;
}

/** A table, or an empty state saying what is missing. */
export function table<T>(label: string, columns: Column<T>[], rows: T[], empty: string): Html {
  if (rows.length === 0) return `<p class="empty" role="status">${esc(empty)}</p>`;
  return `<table aria-label="${esc(label)}"><thead><tr>${columns
    .map((c) => `<th scope="col"${c.num ? ' class="num"' : ''}>${esc(c.head)}</th>`)
    .join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${columns.map((c) => `<td${c.num ? ' class="num"' : ''}>${c.cell(r)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export const facts = (pairs: [string, Html][]): Html =>
  `<dl class="facts">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v || '<span class="muted">—</span>'}</dd>`).join('')}</dl>`;

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
  return `<form class="filters" method="get" role="search">${fields
    .map((f) => {
      const v = q[f.name] ?? '';
      const id = `f-${f.name}`;
      const control = f.options
        ? `<select id="${id}" name="${esc(f.name)}">${f.options
            .map(([val, text]) => `<option value="${esc(val)}"${val === v ? ' selected' : ''}>${esc(text)}</option>`)
            .join('')}</select>`
        : `<input id="${id}" name="${esc(f.name)}" type="${f.type ?? 'text'}" value="${esc(v)}">`;
      return `<label for="${id}">${esc(f.label)}${control}</label>`;
    })
    .join('')}<button>Search</button> <a class="button secondary" href="?">Clear</a></form>`;
}

/**
 * Cursor paging both ways: `cursor` is where this page starts, `back` the starts of the pages
 * before it (cursors hold no comma; `-` is the first page).
 */
export function pager(q: Query, nextCursor: string | null): Html {
  const back = q['back'] ? q['back'].split(',') : [];
  const here = q['cursor'] ?? '-';
  const prev = back.length
    ? (() => {
        const start = back[back.length - 1]!;
        return `<a rel="prev" href="${esc(qs({ ...q, cursor: start === '-' ? undefined : start, back: back.slice(0, -1).join(',') || undefined }))}">← Previous</a>`;
      })()
    : '<span class="disabled">← Previous</span>';
  const next = nextCursor
    ? `<a rel="next" href="${esc(qs({ ...q, cursor: nextCursor, back: [...back, here].join(',') }))}">Next →</a>`
    : '<span class="disabled">Next →</span>';
  return `<nav class="pager" aria-label="Pages">${prev}${next}</nav>`;
}

/** before → after of an audit entry, key by key. */
export function diff(before: unknown, after: unknown): Html {
  const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
  const b = obj(before);
  const a = obj(after);
  const show = (v: unknown) => esc(typeof v === 'string' ? v : JSON.stringify(v));
  if (!b && !a) return '<span class="muted">—</span>';
  if (!b || !a)
    return `<div class="diff">${b ? `<del>${show(before)}</del>` : ''}${a ? `<ins>${show(after)}</ins>` : ''}</div>`;
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  const rows = keys
    .filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
    .map(
      (k) =>
        `<div><code>${esc(k)}</code>: ${k in b ? `<del>${show(b[k])}</del>` : ''} → ${k in a ? `<ins>${show(a[k])}</ins>` : ''}</div>`,
    );
  return `<div class="diff">${rows.join('') || '<span class="muted">no change</span>'}</div>`;
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
