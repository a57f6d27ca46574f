import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import type { Transaction } from 'kysely';
import type { Database } from '@billing/db';
import { AuthUnavailableError } from '@billing/auth-client';
import {
  cancelSubscription,
  checkoutOrderCreated,
  CheckoutRefused,
  checkoutRefusedAtProvider,
  dropScheduledChange,
  openCheckout,
  paymentMethodRequests,
  planChangeFor,
  PlanChangeRefused,
  requestPlanChange,
  resumeSubscription,
  subscriptions,
  vaultCheckoutOpened,
} from '@billing/billing-core';
import { isUuid, keysetPage, subscriptionView } from '@billing/http-api';
import { isLive, NotResumableError } from '@billing/domain';
import { ProviderRefusedError } from '@billing/payments';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import type { Catalogue } from '../catalogue.js';
import {
  CancelBody,
  ChangeBody,
  ChangePreview,
  ChangeQuery,
  CheckoutCreated,
  CreateSubscriptionBody,
  IdempotencyHeaders,
  CreateSubscriptionQuery,
  IdParams,
  ListQuery,
  Problem,
  SubscriptionSchema,
} from '../schemas.js';
import { withIdempotency, type StoredAnswer } from '../idempotency.js';
import { SlidingWindowLimiter } from '../rate-limit.js';

const errors = {
  400: Problem,
  401: Problem,
  404: Problem,
  409: Problem,
  413: Problem,
  415: Problem,
  422: Problem,
  429: Problem,
  502: Problem,
  503: Problem,
};

export function subscriptionRoutes(
  app: HttpApp,
  deps: BillingApiDeps,
  catalogue: { read(): Promise<Catalogue> },
): void {
  const { rt, config, provider, auth } = deps;
  const limiter = new SlidingWindowLimiter(10, 60_000);
  // Each replacement makes a PayPal setup token and a row: limited per user like checkout.
  const walletLimiter = new SlidingWindowLimiter(10, 60_000);

  app.post(
    '/v1/subscriptions',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: 'Buy a plan: records the subscription and its first payment, creates the PayPal order',
        security: [{ bearerAuth: [] }],
        body: CreateSubscriptionBody,
        querystring: CreateSubscriptionQuery,
        headers: IdempotencyHeaders,
        response: { 201: CheckoutCreated, 303: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const answer = await withIdempotency(rt.db, req, req.userId, async () => {
        const wait = limiter.take(req.userId);
        if (wait)
          throw new AppError('rate-limited', 'at most 10 checkouts a minute; try again later', {
            'retry-after': String(wait),
          });
        return createCheckout(req.userId, req.body.planId, Boolean(req.query.redirect), req.body.couponCode);
      });
      reply.headers(answer.headers);
      if (answer.status === 303) return reply.redirect(answer.headers['location'] ?? '', 303);
      return reply.status(answer.status).send(answer.body as never);
    },
  );

  /** The user's roles at the Auth service; unreachable: 503 `auth-service-unavailable`, nothing recorded. */
  async function readRoles(userId: string): Promise<string[]> {
    try {
      return await auth.getRoles(userId);
    } catch (err) {
      if (err instanceof AuthUnavailableError)
        throw new AppError(
          'auth-service-unavailable',
          'the Auth service is unreachable; nothing was recorded, try again shortly',
          { 'retry-after': '5' },
        );
      throw err;
    }
  }

  async function createCheckout(
    userId: string,
    planId: string,
    redirect: boolean,
    couponCode?: string,
  ): Promise<StoredAnswer> {
    // The plan (from the catalogue kept until a plan changes) and the user's current roles are
    // independent reads: fetch them together.
    const rolesReadAt = new Date();
    const [plan, roles] = await Promise.all([catalogue.read().then((c) => c.byId.get(planId)), readRoles(userId)]);
    if (!plan) throw new AppError('not-found', `no active plan "${planId}"`);

    const subscriptionId = randomUUID();
    const paymentId = randomUUID();
    const opened = await openCheckout(rt.db, {
      subscriptionId,
      paymentId,
      userId,
      plan,
      couponCode,
      roles,
      rolesReadAt,
    }).catch((err: unknown) => {
      if (err instanceof CheckoutRefused) throw new AppError(err.code, err.message);
      throw err;
    });
    if (opened.due !== 'paid')
      return startVaultCheckout(userId, subscriptionId, opened.due === 'free' ? paymentId : null, plan.name, redirect);

    let checkout;
    try {
      checkout = await provider.createCheckout({
        paymentId,
        amount: opened.amount,
        currency: plan.currency,
        description: plan.name,
        returnUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/return`,
        cancelUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/cancel`,
        idempotencyKey: `${paymentId}:create`,
      });
    } catch (err) {
      await checkoutRefusedAtProvider(rt.db, { subscriptionId, paymentId });
      rt.logger.warn('checkout failed at PayPal', { paymentId, error: (err as Error).message });
      throw err instanceof ProviderRefusedError
        ? new AppError('payment-provider-refused', 'PayPal refused to create the order; nothing was charged')
        : new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing was charged, try again');
    }
    await checkoutOrderCreated(rt.db, {
      paymentId,
      subscriptionId,
      orderId: checkout.orderId,
      approvalUrl: checkout.approvalUrl,
    });
    if (redirect) return { status: 303, body: null, headers: { location: checkout.approvalUrl } };
    return {
      status: 201,
      body: { subscriptionId, paymentId, status: 'pending', approvalUrl: checkout.approvalUrl },
      headers: {},
    };
  }

  /**
   * A checkout with nothing to charge now (docs/api.md, free trials): a free trial, or a first period a coupon
   * makes free (its payment of 0 is `paymentId`). PayPal's vault setup token saves the buyer's
   * wallet without a charge; the buyer approves at PayPal, and once the payment token exists the
   * trial starts, or the free first period is recorded as paid.
   */
  async function startVaultCheckout(
    userId: string,
    subscriptionId: string,
    paymentId: string | null,
    planName: string,
    redirect: boolean,
  ): Promise<StoredAnswer> {
    let token;
    try {
      token = await provider.createSetupToken({
        returnUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/vault-return`,
        cancelUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/vault-cancel`,
        description: paymentId
          ? `${planName}: first period free, PayPal saved for the renewals`
          : `${planName}: free trial, PayPal saved for the first charge at its end`,
        idempotencyKey: `${subscriptionId}:setup`,
      });
      if (!token.approvalUrl) throw new Error('PayPal gave no approval link');
    } catch (err) {
      await checkoutRefusedAtProvider(rt.db, { subscriptionId, paymentId: null });
      rt.logger.warn('checkout without a charge (a trial, a free first period) failed at PayPal', {
        subscriptionId,
        error: (err as Error).message,
      });
      throw err instanceof ProviderRefusedError
        ? new AppError('payment-provider-refused', 'PayPal refused to start saving a wallet; nothing was charged')
        : new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing was charged, try again');
    }
    const approvalUrl = token.approvalUrl;
    await vaultCheckoutOpened(rt.db, { subscriptionId, userId, setupTokenId: token.setupTokenId, approvalUrl });
    if (redirect) return { status: 303, body: null, headers: { location: approvalUrl } };
    return { status: 201, body: { subscriptionId, paymentId, status: 'pending', approvalUrl }, headers: {} };
  }

  app.get(
    '/v1/subscriptions',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: "The caller's subscriptions, newest first",
        security: [{ bearerAuth: [] }],
        querystring: ListQuery,
        response: {
          200: Type.Object({
            items: Type.Array(SubscriptionSchema),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          400: Problem,
          401: Problem,
        },
      },
    },
    async (req) => {
      const { rows, nextCursor } = await keysetPage(
        rt.db.selectFrom('subscriptions').selectAll().where('user_id', '=', req.userId),
        req.query.limit ?? 20,
        req.query.cursor,
      );
      const now = new Date();
      return { items: rows.map((s) => subscriptionView(s, now)), nextCursor };
    },
  );

  app.get(
    '/v1/subscriptions/:id',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: "One of the caller's subscriptions",
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: SubscriptionSchema, 401: Problem, 404: Problem },
      },
    },
    async (req) => {
      const id = req.params.id;
      const row = isUuid(id)
        ? await rt.db
            .selectFrom('subscriptions')
            .selectAll()
            .where('id', '=', id)
            .where('user_id', '=', req.userId)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new AppError('not-found', 'no such subscription');
      return subscriptionView(row);
    },
  );

  const lockOwn = async (trx: Transaction<Database>, id: string, userId: string) => {
    const row = isUuid(id) ? await subscriptions.lock(trx, id, userId) : undefined;
    if (!row) throw new AppError('not-found', 'no such subscription');
    return row;
  };

  app.post(
    '/v1/subscriptions/:id/cancel',
    {
      onRequest: app.authenticate,
      // No body at all means the default mode; an empty or malformed JSON body is still a 400.
      preValidation: async (req) => {
        if (req.body === undefined) (req as { body: unknown }).body = {};
      },
      schema: {
        tags: ['subscriptions'],
        summary: 'Cancel at the period end (default) or immediately, with a pro-rata refund',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        body: CancelBody,
        response: { 200: SubscriptionSchema, 400: Problem, 401: Problem, 404: Problem, 413: Problem, 415: Problem },
      },
    },
    async (req) => {
      const mode = req.body.mode ?? 'at_period_end';
      const now = new Date();
      const result = await rt.db.transaction().execute(async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        return cancelSubscription(trx, sub, mode, now, {
          by: `user:${req.userId}`,
          reason: `cancelled by the user (${mode})`,
        });
      });
      if (result.changed)
        rt.logger.info('subscription cancelled', {
          subscriptionId: req.params.id,
          mode,
          refundAmount: result.refundAmount,
        });
      return subscriptionView(result.subscription, now);
    },
  );

  app.post(
    '/v1/subscriptions/:id/resume',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: 'Undo a cancel at the period end',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: SubscriptionSchema, 401: Problem, 404: Problem, 409: Problem },
      },
    },
    async (req) => {
      const now = new Date();
      const row = await rt.db.transaction().execute(async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        await resumeSubscription(trx, sub, now).catch((err: unknown) => {
          if (err instanceof NotResumableError) throw new AppError('not-resumable', err.message);
          throw err;
        });
        return sub;
      });
      return subscriptionView(row, now);
    },
  );

  /** The caller's subscription, read without a lock: another user's, or a malformed id, is 404. */
  const readOwn = async (id: string, userId: string) => {
    const row = isUuid(id)
      ? await rt.db
          .selectFrom('subscriptions')
          .selectAll()
          .where('id', '=', id)
          .where('user_id', '=', userId)
          .executeTakeFirst()
      : undefined;
    if (!row) throw new AppError('not-found', 'no such subscription');
    return row;
  };

  const refused = (err: unknown): never => {
    if (err instanceof PlanChangeRefused) throw new AppError(err.code, err.message);
    throw err;
  };

  app.get(
    '/v1/subscriptions/:id/change',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: 'Preview a plan change: what it would charge now and when it takes effect',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        querystring: ChangeQuery,
        response: { 200: ChangePreview, 400: Problem, 401: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    },
    async (req) => {
      const now = new Date();
      const id = req.params.id;
      const sub = await readOwn(id, req.userId);
      const { quote } = await planChangeFor(rt.db, sub, req.query.planId, now).catch(refused);
      return {
        planId: req.query.planId,
        effectiveAt: quote.effectiveAt.toISOString(),
        amountDueNow: quote.amountDueNow,
        currency: sub.currency,
      };
    },
  );

  app.post(
    '/v1/subscriptions/:id/change',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary:
          'Change plan: an upgrade now with the prorated charge, a change of period now with the unused time credited, a downgrade at the period end',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        body: ChangeBody,
        headers: IdempotencyHeaders,
        response: {
          200: Type.Object({ subscription: SubscriptionSchema, paymentId: Type.Null() }),
          202: Type.Object({ subscription: SubscriptionSchema, paymentId: Type.String({ format: 'uuid' }) }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const answer = await withIdempotency(rt.db, req, req.userId, async () => {
        const now = new Date();
        // A change to another role reads the user's roles first (no connection held while the Auth
        // service answers): whether the new role was held before us is known per role (docs/auth.md).
        const [target, current] = await Promise.all([
          catalogue.read().then((c) => c.byId.get(req.body.planId)),
          readOwn(req.params.id, req.userId),
        ]);
        const rolesReadAt = new Date();
        const roles = target && target.role !== current.role ? await readRoles(req.userId) : null;
        const result = await rt.db
          .transaction()
          .execute(async (trx) => {
            const sub = await lockOwn(trx, req.params.id, req.userId);
            const r = await requestPlanChange(trx, sub, req.body.planId, now, {
              ...(roles ? { roles: { names: roles, readAt: rolesReadAt } } : {}),
            });
            return { r, sub };
          })
          .catch(refused);
        rt.logger.info('plan change requested', {
          subscriptionId: req.params.id,
          planId: req.body.planId,
          kind: result.r.change.kind,
          amount: result.r.change.amount,
        });
        const subscription = subscriptionView(result.sub, now);
        return result.r.kind === 'charging'
          ? { status: 202, headers: {}, body: { subscription, paymentId: result.r.paymentId } }
          : { status: 200, headers: {}, body: { subscription, paymentId: null } };
      });
      reply.headers(answer.headers);
      return reply.status(answer.status).send(answer.body as never);
    },
  );

  app.delete(
    '/v1/subscriptions/:id/change',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: 'Drop the plan change scheduled for the period end',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: SubscriptionSchema, 401: Problem, 404: Problem, 409: Problem },
      },
    },
    async (req) => {
      const now = new Date();
      const sub = await rt.db
        .transaction()
        .execute(async (trx) => {
          const row = await lockOwn(trx, req.params.id, req.userId);
          if (!(await dropScheduledChange(trx, row))) throw new AppError('not-found', 'no plan change is scheduled');
          return row;
        })
        .catch(refused);
      return subscriptionView(sub, now);
    },
  );

  app.post(
    '/v1/subscriptions/:id/payment-method',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: "Replace the subscription's payment method: PayPal's vault approval, no charge now",
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: {
          201: Type.Object({ approvalUrl: Type.String() }),
          401: Problem,
          404: Problem,
          409: Problem,
          429: Problem,
          502: Problem,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const sub = await readOwn(id, req.userId);
      if (!isLive(sub.status))
        throw new AppError('not-changeable', `a ${sub.status} subscription has no payment method to replace`);
      const wait = walletLimiter.take(req.userId);
      if (wait)
        throw new AppError('rate-limited', 'at most 10 payment-method replacements a minute; try again later', {
          'retry-after': String(wait),
        });
      const requestId = randomUUID();
      const base = config.PUBLIC_BASE_URL.replace(/\/$/, '');
      let token;
      try {
        token = await provider.createSetupToken({
          returnUrl: `${base}/v1/checkout/vault-return`,
          cancelUrl: `${base}/v1/checkout/vault-cancel`,
          description: `${sub.plan_name}: save PayPal for its renewals`,
          idempotencyKey: `${requestId}:setup`,
        });
      } catch (err) {
        if (err instanceof ProviderRefusedError)
          throw new AppError('payment-provider-refused', 'PayPal refused to start saving a wallet; nothing changed');
        throw new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing changed, try again');
      }
      if (!token.approvalUrl)
        throw new AppError('payment-provider-unavailable', 'PayPal gave no approval link; try again');
      await paymentMethodRequests.open(rt.db, {
        id: requestId,
        subscriptionId: sub.id,
        userId: sub.user_id,
        setupTokenId: token.setupTokenId,
      });
      return reply.status(201).send({ approvalUrl: token.approvalUrl });
    },
  );
}
