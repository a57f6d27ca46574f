import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { sql } from 'kysely';
import { AuthUnavailableError } from '@billing/auth-client';
import { lockKey, subscriptionView } from '@billing/billing-core';
import { ProviderRefusedError } from '@billing/payments';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import { CheckoutCreated, CreateSubscriptionBody, CreateSubscriptionQuery, IdParams, ListQuery, Problem, SubscriptionSchema } from '../schemas.js';
import { decodeCursor, encodeCursor, isUuid } from '../pagination.js';

const errors = { 400: Problem, 401: Problem, 404: Problem, 409: Problem, 413: Problem, 415: Problem, 422: Problem, 429: Problem, 502: Problem, 503: Problem };

export function subscriptionRoutes(app: HttpApp, deps: BillingApiDeps): void {
  const { rt, config, provider, auth } = deps;

  app.post('/v1/subscriptions', {
    onRequest: app.authenticate,
    schema: {
      tags: ['subscriptions'], summary: 'Buy a plan: records the subscription and its first payment, creates the PayPal order',
      security: [{ bearerAuth: [] }], body: CreateSubscriptionBody, querystring: CreateSubscriptionQuery,
      response: { 201: CheckoutCreated, 303: Type.Null(), ...errors },
    },
  }, async (req, reply) => {
    const userId = req.userId;
    const { planId } = req.body;
    const plan = await rt.db.selectFrom('plans').selectAll().where('id', '=', planId).where('active', '=', true).executeTakeFirst();
    if (!plan) throw new AppError('not-found', `no active plan "${planId}"`);

    let roles: string[];
    try {
      roles = await auth.getRoles(userId);
    } catch (err) {
      if (err instanceof AuthUnavailableError) throw new AppError('auth-service-unavailable', 'the Auth service is unreachable; nothing was recorded, try again shortly', { 'retry-after': '5' });
      throw err;
    }

    const subscriptionId = randomUUID();
    const paymentId = randomUUID();
    await rt.db.transaction().execute(async (trx) => {
      await lockKey(trx, `user:${userId}`);
      const same = await trx.selectFrom('subscriptions').selectAll().where('user_id', '=', userId).where('role', '=', plan.role)
        .where('status', 'in', ['pending', 'active']).forUpdate().execute();
      if (same.some((s) => s.status === 'active')) throw new AppError('already-subscribed', `an active subscription already grants the role "${plan.role}"`);
      const pendingIds = same.filter((s) => s.status === 'pending').map((s) => s.id);
      if (pendingIds.length) {
        const approved = await trx.selectFrom('payments').select('id').where('subscription_id', 'in', pendingIds).where('status', '=', 'approved').executeTakeFirst();
        if (approved) throw new AppError('checkout-in-progress', 'an earlier checkout for this role is already approved and being captured');
        // The new purchase replaces older unfinished checkouts for the same role.
        await trx.updateTable('payments').set({ status: 'cancelled', failure_reason: 'replaced', updated_at: sql`now()` })
          .where('subscription_id', 'in', pendingIds).where('status', 'in', ['created', 'pending']).execute();
        await trx.updateTable('subscriptions').set({ status: 'cancelled', cancelled_at: sql`now()`, updated_at: sql`now()`, version: sql`version + 1` })
          .where('id', 'in', pendingIds).execute();
      }
      const liveGrant = await trx.selectFrom('role_grants').select('id').where('user_id', '=', userId).where('role', '=', plan.role).where('ended_at', 'is', null).executeTakeFirst();
      await trx.insertInto('subscriptions').values({
        id: subscriptionId, user_id: userId, plan_id: plan.id, plan_name: plan.name, role: plan.role, amount: plan.amount, currency: plan.currency,
        period: plan.period, status: 'pending', role_held_before: roles.includes(plan.role) && !liveGrant,
      }).execute();
      await trx.insertInto('payments').values({
        id: paymentId, subscription_id: subscriptionId, user_id: userId, kind: 'initial', amount: plan.amount, currency: plan.currency,
        status: 'created', period_index: 0, attempt: 0,
      }).execute();
    });

    let checkout;
    try {
      checkout = await provider.createCheckout({
        paymentId, amount: plan.amount, currency: plan.currency.trim(), description: plan.name,
        returnUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/return`,
        cancelUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/cancel`,
        idempotencyKey: `${paymentId}:create`,
      });
    } catch (err) {
      const refused = err instanceof ProviderRefusedError;
      await rt.db.transaction().execute(async (trx) => {
        await trx.updateTable('payments').set({ status: 'failed', failure_reason: 'provider_error', updated_at: sql`now()` }).where('id', '=', paymentId).execute();
        await trx.updateTable('subscriptions').set({ status: 'cancelled', cancelled_at: sql`now()`, updated_at: sql`now()`, version: sql`version + 1` }).where('id', '=', subscriptionId).execute();
      });
      rt.logger.warn('checkout failed at PayPal', { paymentId, error: (err as Error).message });
      throw refused ? new AppError('payment-provider-refused', 'PayPal refused to create the order; nothing was charged')
        : new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing was charged, try again');
    }
    await rt.db.transaction().execute(async (trx) => {
      await trx.updateTable('payments').set({ provider_order_id: checkout.orderId, approval_url: checkout.approvalUrl, status: sql`case when status = 'created' then 'pending' else status end`, updated_at: sql`now()` }).where('id', '=', paymentId).execute();
      await trx.updateTable('subscriptions').set({ approval_url: checkout.approvalUrl, updated_at: sql`now()` }).where('id', '=', subscriptionId).execute();
    });
    if (req.query.redirect) return reply.redirect(checkout.approvalUrl, 303);
    return reply.status(201).send({ subscriptionId, paymentId, status: 'pending' as const, approvalUrl: checkout.approvalUrl });
  });

  app.get('/v1/subscriptions', {
    onRequest: app.authenticate,
    schema: { tags: ['subscriptions'], summary: "The caller's subscriptions, newest first", security: [{ bearerAuth: [] }], querystring: ListQuery,
      response: { 200: Type.Object({ items: Type.Array(SubscriptionSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), 400: Problem, 401: Problem } },
  }, async (req) => {
    const limit = req.query.limit ?? 20;
    const cursor = decodeCursor(req.query.cursor);
    let q = rt.db.selectFrom('subscriptions').selectAll().where('user_id', '=', req.userId);
    if (cursor) q = q.where((eb) => eb.or([eb('created_at', '<', cursor.at), eb.and([eb('created_at', '=', cursor.at), eb('id', '<', cursor.id)])]));
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    const now = new Date();
    return { items: page.map((s) => subscriptionView(s, now)), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!) : null };
  });

  app.get('/v1/subscriptions/:id', {
    onRequest: app.authenticate,
    schema: { tags: ['subscriptions'], summary: 'One of the caller\'s subscriptions', security: [{ bearerAuth: [] }], params: IdParams, response: { 200: SubscriptionSchema, 401: Problem, 404: Problem } },
  }, async (req) => {
    const id = req.params.id;
    const row = isUuid(id) ? await rt.db.selectFrom('subscriptions').selectAll().where('id', '=', id).where('user_id', '=', req.userId).executeTakeFirst() : undefined;
    if (!row) throw new AppError('not-found', 'no such subscription');
    return subscriptionView(row);
  });
}
