import { Type } from 'typebox';
import { PaymentCheckRequested, PaymentMethodApproved } from '@billing/contracts';
import { checkoutCancelledByBuyer, endPendingCheckout, paymentMethodRequests } from '@billing/billing-core';
import { enqueue } from '@billing/messaging';
import { TtlCache, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';

const TokenQuery = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 64 })),
  PayerID: Type.Optional(Type.String({ maxLength: 64 })),
});

function homeWith(home: string, outcome: string, key = 'checkout'): string {
  const u = new URL(home);
  u.searchParams.set(key, outcome);
  return u.toString();
}

const VaultQuery = Type.Object({
  approval_token_id: Type.Optional(Type.String({ maxLength: 64 })),
  approval_session_id: Type.Optional(Type.String({ maxLength: 64 })),
});

/** docs/api.md: where PayPal sends the buyer back. Public; an unknown token gets the same 303. */
export function checkoutRoutes(app: HttpApp, { rt, config }: BillingApiDeps): void {
  // A burst of hits on one order's return URL asks for one look-up (docs/api.md): a repeat within
  // ten seconds is answered without touching the outbox; per client, 300 hits a minute.
  const recentlyAsked = new TtlCache<true>(10_000, 10_000);
  app.get(
    '/v1/checkout/return',
    {
      config: { rateLimit: { max: 300, timeWindow: '1 minute' } },
      schema: {
        tags: ['checkout'],
        summary: 'PayPal sends the buyer back here after approval',
        querystring: TokenQuery,
        response: { 303: Type.Null() },
      },
    },
    async (req, reply) => {
      const token = req.query.token;
      if (token && !recentlyAsked.get(token)) {
        recentlyAsked.set(token, true);
        await rt.db.transaction().execute(async (trx) => {
          const payment = await trx
            .selectFrom('payments')
            .select('id')
            .where('provider_order_id', '=', token)
            .executeTakeFirst();
          // Ask the payment-worker to look the order up and capture it, so a late webhook does not hold the buyer up.
          if (payment) await enqueue(trx, PaymentCheckRequested, { orderId: token, source: 'return_url' });
        });
      }
      return reply.redirect(homeWith(config.APP_HOME_URL, 'success'), 303);
    },
  );

  app.get(
    '/v1/checkout/cancel',
    {
      config: { rateLimit: { max: 300, timeWindow: '1 minute' } },
      schema: {
        tags: ['checkout'],
        summary: 'The buyer gave up at PayPal',
        querystring: TokenQuery,
        response: { 303: Type.Null() },
      },
    },
    async (req, reply) => {
      const token = req.query.token;
      if (token) await checkoutCancelledByBuyer(rt.db, token);
      return reply.redirect(homeWith(config.APP_HOME_URL, 'cancelled'), 303);
    },
  );

  // docs/api.md, …/payment-method: where PayPal sends the buyer back after saving (or not) a new wallet.
  app.get(
    '/v1/checkout/vault-return',
    {
      config: { rateLimit: { max: 300, timeWindow: '1 minute' } },
      schema: {
        tags: ['checkout'],
        summary: 'PayPal sends the buyer back here after approving a new payment method',
        querystring: VaultQuery,
        response: { 303: Type.Null() },
      },
    },
    async (req, reply) => {
      const token = req.query.approval_token_id ?? req.query.approval_session_id;
      let walletCheckout = false;
      if (token)
        await rt.db.transaction().execute(async (trx) => {
          const r = await trx
            .selectFrom('payment_method_requests as r')
            .innerJoin('subscriptions as s', 's.id', 'r.subscription_id')
            .select(['r.id', 'r.status', 's.status as subscriptionStatus'])
            .where('r.setup_token_id', '=', token)
            .executeTakeFirst();
          // A checkout saving a wallet (a trial, a free first period: docs/api.md, free trials) lands like a checkout.
          walletCheckout = r?.subscriptionStatus === 'pending';
          if (r?.status === 'pending') await enqueue(trx, PaymentMethodApproved, { setupTokenId: token });
        });
      return reply.redirect(
        walletCheckout
          ? homeWith(config.APP_HOME_URL, 'success')
          : homeWith(config.APP_HOME_URL, 'saved', 'payment_method'),
        303,
      );
    },
  );

  app.get(
    '/v1/checkout/vault-cancel',
    {
      config: { rateLimit: { max: 300, timeWindow: '1 minute' } },
      schema: {
        tags: ['checkout'],
        summary: 'The buyer did not save a new payment method',
        querystring: VaultQuery,
        response: { 303: Type.Null() },
      },
    },
    async (req, reply) => {
      const token = req.query.approval_token_id ?? req.query.approval_session_id;
      let walletCheckout = false;
      if (token)
        await rt.db.transaction().execute(async (trx) => {
          const subscriptionId = await paymentMethodRequests.cancelPending(trx, token);
          if (!subscriptionId) return;
          // A checkout saving a wallet (a trial, a free first period) whose buyer gave up at PayPal
          // ends like any checkout given up, with its payment of 0 if it has one.
          walletCheckout = await endPendingCheckout(trx, subscriptionId, { type: 'buyer_cancelled' });
        });
      return reply.redirect(
        walletCheckout
          ? homeWith(config.APP_HOME_URL, 'cancelled')
          : homeWith(config.APP_HOME_URL, 'cancelled', 'payment_method'),
        303,
      );
    },
  );
}
