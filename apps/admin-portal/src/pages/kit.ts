import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Static, TSchema } from 'typebox';
import { INNER_CALL_HEADER, INNER_CALL_TOKEN, type HttpApp } from '@billing/service-kit';
import { COOKIE } from '../admin.js';
import { Html, html, type Query } from './html.js';

/**
 * Where a page's forms get their CSRF field: filled in by `page` once the answer's token is known
 * (written `<!--csrf-->` in a template, or interpolated as `CSRF_FIELD`).
 */
export const CSRF_FIELD = html`<!--csrf-->`;
const CSRF_MARK = CSRF_FIELD.toString();

const NAV: [string, string][] = [
  ['/', 'Home'],
  ['/revenue', 'Revenue'],
  ['/payments', 'Payments'],
  ['/subscriptions', 'Subscriptions'],
  ['/users', 'Users'],
  ['/plans', 'Plans'],
  ['/coupons', 'Coupons'],
  ['/dead-letters', 'Dead letters'],
  ['/audit', 'Audit'],
];

export interface LayoutOptions {
  /** The section of the nav this page belongs to. */
  section?: string;
  signedIn?: boolean;
  /** The operator, shown by the sign-out button. */
  who?: string;
  flash?: string | undefined;
}

export function layout(title: string, body: Html, opts: LayoutOptions = {}): Html {
  const signedIn = opts.signedIn ?? true;
  const nav = signedIn
    ? html`<nav aria-label="Main">${NAV.map(
        ([href, text]) => html`<a href="${href}"${opts.section === href ? html` aria-current="page"` : ''}>${text}</a>`,
      )}</nav>
<form method="post" action="/logout">${CSRF_FIELD}${opts.who ? html`<span class="who">${opts.who}</span> ` : ''}<button class="secondary">Sign out</button></form>`
    : '';
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Billing admin</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/portal.css"></head><body>
<header class="top"><a class="brand" href="/">Billing admin</a>${nav}</header>
<main><h1>${title}</h1>${opts.flash ? html`<p class="flash" role="status">${opts.flash}</p>` : ''}${body}</main>
<script src="/assets/portal.js" defer></script></body></html>`;
}

/** An admin API's problem answer (application/problem+json). */
export interface Problem {
  title?: string;
  detail?: string;
}

export interface ApiAnswer {
  status: number;
  /** JSON: the route's schema on success, a problem otherwise; `read` types it. */
  body: unknown;
}

export interface Kit {
  app: HttpApp;
  /** Calls the admin API for the signed-in operator (pages and API share one implementation). */
  api(
    req: FastifyRequest,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
  ): Promise<ApiAnswer>;
  /**
   * A GET of the admin API with its answer typed by the TypeBox schema that route answers with
   * (src/api/schemas.ts): a 200's body is that schema's (fastify serialised it through it); any
   * other status is a problem, for `refusedPage`.
   */
  read<S extends TSchema>(
    req: FastifyRequest,
    url: string,
    schema: S,
  ): Promise<{ ok: true; status: 200; body: Static<S> } | { ok: false; status: number; body: Problem }>;
  /** The same, for an answer that is not JSON (a receipt). */
  apiRaw(req: FastifyRequest, url: string, accept: string): Promise<{ status: number; body: Buffer; type: string }>;
  /** A signed-in admin's page: signed out → 303 /login; not an admin → 403 with a way out. */
  page(
    section: string,
    render: (req: FastifyRequest, reply: FastifyReply) => Promise<Html | { status: number; html: Html } | FastifyReply>,
  ): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  csrf(reply: FastifyReply): Html;
  /** preHandler: the form's _csrf field is only readable once the body is parsed. */
  checked: { preHandler: HttpApp['csrfProtection'] };
}

export function makeKit(app: HttpApp): Kit {
  const api: Kit['api'] = async (req, method, url, payload) => {
    const res = await app.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${req.cookies[COOKIE] ?? ''}`,
        'x-request-id': req.id,
        [INNER_CALL_HEADER]: INNER_CALL_TOKEN,
      },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
    return { status: res.statusCode, body: res.json() as unknown };
  };
  const read: Kit['read'] = async (req, url) => {
    const r = await api(req, 'GET', url);
    // The route answered through its own response schema: the body is that schema's (or a problem).
    return r.status === 200
      ? { ok: true, status: 200, body: r.body as never }
      : { ok: false, status: r.status, body: r.body as Problem };
  };
  const apiRaw: Kit['apiRaw'] = async (req, url, accept) => {
    const res = await app.inject({
      method: 'GET',
      url,
      headers: {
        authorization: `Bearer ${req.cookies[COOKIE] ?? ''}`,
        accept,
        'x-request-id': req.id,
        [INNER_CALL_HEADER]: INNER_CALL_TOKEN,
      },
    });
    return { status: res.statusCode, body: res.rawPayload, type: String(res.headers['content-type'] ?? '') };
  };
  const csrf = (reply: FastifyReply) => html`<input type="hidden" name="_csrf" value="${reply.generateCsrf()}">`;
  const page: Kit['page'] = (section, render) => async (req, reply) => {
    try {
      await app.authenticateCookie(req);
    } catch {
      return reply.redirect('/login', 303);
    }
    if (!req.userRoles.includes('admin'))
      return reply
        .status(403)
        .type('text/html')
        .send(
          layout(
            'Forbidden',
            html`<p class="error">You are signed in as <strong>${req.userId}</strong>, who does not hold the admin role.</p>
<p>Ask an administrator for the role, or sign out and sign in as someone who has it.</p>
<form method="post" action="/logout">${csrf(reply)}<button>Sign out</button></form>`,
            { signedIn: false },
          )
            .toString()
            .replaceAll(CSRF_MARK, ''),
        );
    const out = await render(req, reply);
    if (reply.sent || !(out instanceof Html || 'html' in out)) return reply; // it redirected
    const answer = out instanceof Html ? { status: 200, html: out } : out;
    return reply
      .status(answer.status)
      .type('text/html')
      .send(answer.html.toString().replaceAll(CSRF_MARK, csrf(reply).toString()));
  };
  return { app, api, read, apiRaw, page, csrf, checked: { preHandler: app.csrfProtection } };
}

/** The query string of a page request, as strings. */
export const queryOf = (req: FastifyRequest): Query => {
  const out: Query = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>))
    if (typeof v === 'string') out[k] = v;
  return out;
};

/** The admin API's list query from a page's: paging fields translated, the pager's own dropped. */
export function listQuery(q: Query, keys: string[]): string {
  const p = new URLSearchParams();
  for (const k of [...keys, 'cursor']) if (q[k]) p.set(k, q[k]);
  return p.toString();
}

/** What an operator is about to do, shown once more with a confirm button (the form's fields carried over). */
export function confirmStep(opts: {
  action: string;
  summary: Html;
  fields: Record<string, string>;
  confirmLabel: string;
  cancelHref: string;
  danger?: boolean;
}): Html {
  const hidden = Object.entries(opts.fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`);
  return html`<section class="card confirm" aria-labelledby="confirm-h"><h2 id="confirm-h">Please confirm</h2>${opts.summary}
<form method="post" action="${opts.action}">${CSRF_FIELD}${hidden}<input type="hidden" name="confirm" value="yes">
<button${opts.danger ? html` class="danger"` : ''}>${opts.confirmLabel}</button> <a class="button secondary" href="${opts.cancelHref}">Cancel</a></form></section>`;
}

/** A refused action: the API's reason, and the way back. */
export function refusedPage(
  title: string,
  answer: ApiAnswer,
  back: string,
  section: string,
): { status: number; html: Html } {
  return {
    status: answer.status,
    html: layout(
      title,
      html`<p class="error" role="alert">${(answer.body as Problem | null)?.detail ?? (answer.body as Problem | null)?.title ?? 'refused'}</p><p><a href="${back}">Back</a></p>`,
      { section },
    ),
  };
}

/** A detail page's 404: what was asked for, in the page's section. */
export const notFound = (what: string, id: string, section: string, who: string): { status: number; html: Html } => ({
  status: 404,
  html: layout(`${what} not found`, html`<p class="empty">No ${what.toLowerCase()} ${id}.</p>`, { section, who }),
});

/** 303 to a page with a message on it. */
export const doneTo = (reply: FastifyReply, href: string, message: string) =>
  reply.redirect(`${href}${href.includes('?') ? '&' : '?'}done=${encodeURIComponent(message)}`, 303);
