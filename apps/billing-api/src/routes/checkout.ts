import { Type, type TSchema } from 'typebox';
import {
  buyerReturned,
  checkoutCancelledByBuyer,
  walletApprovedByBuyer,
  walletCancelledByBuyer,
} from '@billing/billing-core';
import { TtlCache, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';

const TokenQuery = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 64 })),
  PayerID: Type.Optional(Type.String({ maxLength: 64 })),
});

const VaultQuery = Type.Object({
  approval_token_id: Type.Optional(Type.String({ maxLength: 64 })),
  approval_session_id: Type.Optional(Type.String({ maxLength: 64 })),
});

function homeWith(home: string, outcome: string, key = 'checkout'): string {
  const u = new URL(home);
  u.searchParams.set(key, outcome);
  return u.toString();
}

/** A public page PayPal sends the buyer back to: 300 hits a minute per client, always a 303. */
const returnRoute = <Q extends TSchema>(summary: string, querystring: Q) => ({
  config: { rateLimit: { max: 300, timeWindow: '1 minute' } },
  schema: { tags: ['checkout'], summary, querystring, response: { 303: Type.Null() } },
});

/** docs/api.md: where PayPal sends the buyer back. Public; an unknown token gets the same 303. */
export function checkoutRoutes(app: HttpApp, { rt, config }: BillingApiDeps): void {
  const home = config.APP_HOME_URL;
  // A burst of hits on one order's return URL asks for one look-up (docs/api.md): a repeat within
  // ten seconds is answered without touching the outbox; per client, 300 hits a minute.
  const recentlyAsked = new TtlCache<true>(10_000, 10_000);
  app.get(
    '/v1/checkout/return',
    returnRoute('PayPal sends the buyer back here after approval', TokenQuery),
    async (req, reply) => {
      const token = req.query.token;
      if (token && !recentlyAsked.get(token)) {
        recentlyAsked.set(token, true);
        await buyerReturned(rt.db, token);
      }
      return reply.redirect(homeWith(home, 'success'), 303);
    },
  );

  app.get('/v1/checkout/cancel', returnRoute('The buyer gave up at PayPal', TokenQuery), async (req, reply) => {
    const token = req.query.token;
    if (token) await checkoutCancelledByBuyer(rt.db, token);
    return reply.redirect(homeWith(home, 'cancelled'), 303);
  });

  // docs/api.md, …/payment-method: where PayPal sends the buyer back after saving (or not) a new
  // wallet. A checkout saving one (a trial, a free first period: docs/api.md, free trials) lands
  // like a checkout; a replacement on the payment-method outcome.
  app.get(
    '/v1/checkout/vault-return',
    returnRoute('PayPal sends the buyer back here after approving a new payment method', VaultQuery),
    async (req, reply) => {
      const token = req.query.approval_token_id ?? req.query.approval_session_id;
      const saves = token ? await walletApprovedByBuyer(rt.db, token) : 'unknown';
      return reply.redirect(
        saves === 'checkout' ? homeWith(home, 'success') : homeWith(home, 'saved', 'payment_method'),
        303,
      );
    },
  );

  app.get(
    '/v1/checkout/vault-cancel',
    returnRoute('The buyer did not save a new payment method', VaultQuery),
    async (req, reply) => {
      const token = req.query.approval_token_id ?? req.query.approval_session_id;
      const ended = token ? await walletCancelledByBuyer(rt.db, token) : 'unknown';
      return reply.redirect(
        ended === 'checkout' ? homeWith(home, 'cancelled') : homeWith(home, 'cancelled', 'payment_method'),
        303,
      );
    },
  );
}
