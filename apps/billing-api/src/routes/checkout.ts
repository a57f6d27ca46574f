import { Type } from 'typebox';
import { sql } from 'kysely';
import { PaymentCheckRequested } from '@billing/contracts';
import { applyPaymentEvent, applySubscriptionEvent } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import type { HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';

const TokenQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: 64 })), PayerID: Type.Optional(Type.String({ maxLength: 64 })) });

function homeWith(home: string, outcome: string): string {
  const u = new URL(home);
  u.searchParams.set('checkout', outcome);
  return u.toString();
}

/** SPEC §3: where PayPal sends the buyer back. Public; an unknown token gets the same 303. */
export function checkoutRoutes(app: HttpApp, { rt, config }: BillingApiDeps): void {
  app.get('/v1/checkout/return', {
    schema: { tags: ['checkout'], summary: 'PayPal sends the buyer back here after approval', querystring: TokenQuery, response: { 303: Type.Null() } },
  }, async (req, reply) => {
    const token = req.query.token;
    if (token) {
      await rt.db.transaction().execute(async (trx) => {
        const payment = await trx.selectFrom('payments').select('id').where('provider_order_id', '=', token).executeTakeFirst();
        // Ask the payment-worker to look the order up and capture it, so a late webhook does not hold the buyer up.
        if (payment) await enqueue(trx, PaymentCheckRequested, { orderId: token, source: 'return_url' });
      });
    }
    return reply.redirect(homeWith(config.APP_HOME_URL, 'success'), 303);
  });

  app.get('/v1/checkout/cancel', {
    schema: { tags: ['checkout'], summary: 'The buyer gave up at PayPal', querystring: TokenQuery, response: { 303: Type.Null() } },
  }, async (req, reply) => {
    const token = req.query.token;
    if (token) {
      await rt.db.transaction().execute(async (trx) => {
        const payment = await trx.selectFrom('payments').selectAll().where('provider_order_id', '=', token).forUpdate().executeTakeFirst();
        if (!payment) return;
        const next = payment.status === 'pending' ? applyPaymentEvent(payment.status, { type: 'buyer_cancelled' }) : null;
        if (!next) return;
        await trx.updateTable('payments').set({ status: next.status, failure_reason: next.failureReason ?? null, updated_at: sql`now()` }).where('id', '=', payment.id).execute();
        const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', payment.subscription_id).forUpdate().executeTakeFirstOrThrow();
        const s = applySubscriptionEvent({ status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end }, { type: 'initial_payment_failed' });
        if (s) await trx.updateTable('subscriptions').set({ status: s.status, cancelled_at: sql`now()`, updated_at: sql`now()`, version: sql`version + 1` }).where('id', '=', sub.id).execute();
      });
    }
    return reply.redirect(homeWith(config.APP_HOME_URL, 'cancelled'), 303);
  });
}
