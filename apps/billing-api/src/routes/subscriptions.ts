import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import type { Transaction } from 'kysely';
import type { Database } from '@billing/db';
import { AuthUnavailableError } from '@billing/auth-client';
import {
  cancelSubscription,
  CouponNotApplicable,
  currentPeriod,
  dropScheduledChange,
  endCheckout,
  endPendingCheckout,
  hadTrial,
  lockKey,
  openPlainCheckout,
  paymentMethodRequests,
  payments,
  planChangeFor,
  PlanChangeRefused,
  roleHeldBefore,
  redeemCoupon,
  requestPlanChange,
  recordCheckoutOrder,
  subscriptions,
  withCoupon,
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
    let amount = plan.amount;
    // No trial, no coupon, a role not held: nothing to look up, so the usual case is one statement
    // (docs/api.md, POST /v1/subscriptions); it writes nothing if the user has a subscription for the role.
    const plain = plan.trial_period === null && !couponCode && !roles.includes(plan.role) && plan.amount > 0;
    const due = await rt.db.transaction().execute(async (trx) => {
      await lockKey(trx, `user:${userId}`);
      if (plain && (await openPlainCheckout(trx, { subscriptionId, paymentId, userId, plan }))) return 'paid' as const;
      const same = await trx
        .selectFrom('subscriptions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('role', '=', plan.role)
        .where('status', 'in', ['pending', 'trialing', 'active'])
        .forUpdate()
        .execute();
      if (same.some((s) => s.status === 'active' || s.status === 'trialing'))
        throw new AppError('already-subscribed', `an active subscription already grants the role "${plan.role}"`);
      const pendingIds = same.filter((s) => s.status === 'pending').map((s) => s.id);
      if (pendingIds.length) {
        const approved = await trx
          .selectFrom('payments')
          .select('id')
          .where('subscription_id', 'in', pendingIds)
          .where('status', '=', 'approved')
          .executeTakeFirst();
        if (approved)
          throw new AppError(
            'checkout-in-progress',
            'an earlier checkout for this role is already approved and being captured',
          );
        // The new purchase replaces older unfinished checkouts for the same role.
        const open = await trx
          .selectFrom('payments')
          .selectAll()
          .where('subscription_id', 'in', pendingIds)
          .where('status', 'in', ['created', 'pending'])
          .forUpdate()
          .execute();
        for (const p of open) await payments.transition(trx, p, { type: 'superseded' });
        for (const older of same.filter((s) => s.status === 'pending')) {
          await subscriptions.transition(
            trx,
            older,
            { type: 'replaced' },
            { cancelled_at: new Date(), approval_url: null },
          );
        }
      }
      // One trial per user and role (docs/api.md, free trials): one who has had one buys a normal paid checkout.
      const trial = plan.trial_period !== null && !(await hadTrial(trx, userId, plan.role));
      await subscriptions.create(trx, {
        id: subscriptionId,
        user_id: userId,
        plan_id: plan.id,
        plan_name: plan.name,
        role: plan.role,
        amount: plan.amount,
        currency: plan.currency,
        period: plan.period,
        role_held_before: await roleHeldBefore(trx, userId, plan.role, roles, rolesReadAt),
        trial_period: trial ? plan.trial_period : null,
      });
      if (couponCode) {
        // One conditional UPDATE decides (exact under concurrency); a refusal rolls all of this back.
        const coupon = await redeemCoupon(trx, couponCode, { currency: plan.currency, userId, subscriptionId }).catch(
          (err: unknown) => {
            if (err instanceof CouponNotApplicable) throw new AppError('coupon-not-applicable', err.message);
            throw err;
          },
        );
        amount = withCoupon(plan.amount, coupon, 0);
      }
      // A trial charges nothing now: its first period is charged at the trial's end, like a renewal.
      if (trial) return 'trial' as const;
      await payments.create(trx, {
        id: paymentId,
        subscription_id: subscriptionId,
        user_id: userId,
        kind: 'initial',
        amount,
        currency: plan.currency,
        period_index: 0,
        attempt: 0,
      });
      // A coupon that makes the first period free: nothing to charge, but a wallet for the renewals.
      return amount === 0 ? ('free' as const) : ('paid' as const);
    });
    if (due !== 'paid')
      return startVaultCheckout(userId, subscriptionId, due === 'free' ? paymentId : null, plan.name, redirect);

    let checkout;
    try {
      checkout = await provider.createCheckout({
        paymentId,
        amount,
        currency: plan.currency,
        description: plan.name,
        returnUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/return`,
        cancelUrl: `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/cancel`,
        idempotencyKey: `${paymentId}:create`,
      });
    } catch (err) {
      const refused = err instanceof ProviderRefusedError;
      await rt.db.transaction().execute(async (trx) => {
        const p = await payments.lock(trx, { id: paymentId });
        if (p && (await payments.transition(trx, p, { type: 'provider_failed', reason: 'provider_error' }))) {
          await endCheckout(trx, await subscriptions.lockOrThrow(trx, subscriptionId));
        }
      });
      rt.logger.warn('checkout failed at PayPal', { paymentId, error: (err as Error).message });
      throw refused
        ? new AppError('payment-provider-refused', 'PayPal refused to create the order; nothing was charged')
        : new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing was charged, try again');
    }
    const order = { provider_order_id: checkout.orderId, approval_url: checkout.approvalUrl };
    // One statement, no transaction: the payment moves on only if it is still as we created it;
    // the subscription keeps the approval URL either way.
    const recorded = await recordCheckoutOrder(rt.db, {
      paymentId,
      subscriptionId,
      orderId: checkout.orderId,
      approvalUrl: checkout.approvalUrl,
    });
    if (recorded === 'moved')
      await rt.db.transaction().execute(async (trx) => {
        // A webhook moved the payment on already: then only PayPal's ids are kept.
        const p = (await payments.lock(trx, { id: paymentId }))!;
        if (!(await payments.transition(trx, p, { type: 'order_created' }, order)))
          await payments.record(trx, p, order);
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
      await rt.db
        .transaction()
        .execute((trx) =>
          endPendingCheckout(trx, subscriptionId, { type: 'provider_failed', reason: 'provider_error' }),
        );
      rt.logger.warn('checkout without a charge (a trial, a free first period) failed at PayPal', {
        subscriptionId,
        error: (err as Error).message,
      });
      throw err instanceof ProviderRefusedError
        ? new AppError('payment-provider-refused', 'PayPal refused to start saving a wallet; nothing was charged')
        : new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing was charged, try again');
    }
    const approvalUrl = token.approvalUrl;
    await Promise.all([
      paymentMethodRequests.open(rt.db, {
        id: randomUUID(),
        subscriptionId,
        userId,
        setupTokenId: token.setupTokenId,
      }),
      subscriptions.recordById(rt.db, subscriptionId, { approval_url: approvalUrl }),
    ]);
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
        const period = currentPeriod(sub, now);
        try {
          await subscriptions.transition(trx, sub, {
            type: 'resume',
            periodEnded: !period || now >= period.end,
            hasPaymentMethod: Boolean(sub.vault_id),
          });
        } catch (err) {
          if (err instanceof NotResumableError) throw new AppError('not-resumable', err.message);
          throw err;
        }
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
