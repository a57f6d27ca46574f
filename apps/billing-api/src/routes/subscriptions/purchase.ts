import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import {
  checkoutOrderCreated,
  CheckoutRefused,
  checkoutRefusedAtProvider,
  openCheckout,
  vaultCheckoutOpened,
} from '@billing/billing-core';
import { ProviderRefusedError } from '@billing/payments';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../../app.js';
import type { Catalogue } from '../../catalogue.js';
import { CheckoutCreated, CreateSubscriptionBody, CreateSubscriptionQuery, IdempotencyHeaders } from '../../schemas.js';
import { type StoredAnswer, withIdempotency } from '../../idempotency.js';
import { SlidingWindowLimiter } from '../../rate-limit.js';
import { errors, rolesReader } from './shared.js';

/** The routes of the buyer's purchase (docs/api.md, POST /v1/subscriptions): billing-core's checkout use case, then PayPal's order or setup token. */
export function purchaseRoutes(app: HttpApp, deps: BillingApiDeps, catalogue: { read(): Promise<Catalogue> }): void {
  const { rt, config, provider } = deps;
  const readRoles = rolesReader(deps.auth);
  const limiter = new SlidingWindowLimiter(10, 60_000);
  const back = (path: string) => `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/v1/checkout/${path}`;
  /** PayPal refused or could not be reached: nothing was charged (docs/api.md, errors). */
  const providerFailed = (err: unknown, refused: string) =>
    err instanceof ProviderRefusedError
      ? new AppError('payment-provider-refused', `${refused}; nothing was charged`)
      : new AppError('payment-provider-unavailable', 'PayPal could not be reached; nothing was charged, try again');

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
        returnUrl: back('return'),
        cancelUrl: back('cancel'),
        idempotencyKey: `${paymentId}:create`,
      });
    } catch (err) {
      await checkoutRefusedAtProvider(rt.db, { subscriptionId, paymentId });
      rt.logger.warn('checkout failed at PayPal', { paymentId, error: (err as Error).message });
      throw providerFailed(err, 'PayPal refused to create the order');
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
        returnUrl: back('vault-return'),
        cancelUrl: back('vault-cancel'),
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
      throw providerFailed(err, 'PayPal refused to start saving a wallet');
    }
    const approvalUrl = token.approvalUrl;
    await vaultCheckoutOpened(rt.db, { subscriptionId, userId, setupTokenId: token.setupTokenId, approvalUrl });
    if (redirect) return { status: 303, body: null, headers: { location: approvalUrl } };
    return { status: 201, body: { subscriptionId, paymentId, status: 'pending', approvalUrl }, headers: {} };
  }
}
