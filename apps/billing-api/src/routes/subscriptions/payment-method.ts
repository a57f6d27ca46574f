import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { paymentMethodRequests, readRecoveryToken } from '@billing/billing-core';
import type { SubscriptionRow } from '@billing/db';
import { isLive, isUuid } from '@billing/domain';
import { ProviderRefusedError } from '@billing/payments';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../../app.js';
import { IdParams, Problem } from '../../schemas.js';
import { SlidingWindowLimiter } from '../../rate-limit.js';
import { ownSubscriptions } from './shared.js';

/** The routes of replacing the payment method (docs/api.md, …/payment-method). */
export function paymentMethodRoutes(app: HttpApp, deps: BillingApiDeps): void {
  const { rt, config, provider } = deps;
  const { readOwn } = ownSubscriptions(rt.db);
  // Each replacement makes a PayPal setup token and a row: limited per user like checkout.
  const walletLimiter = new SlidingWindowLimiter(10, 60_000);

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
      const sub = await readOwn(req.params.id, req.userId);
      const wait = walletLimiter.take(req.userId);
      if (wait)
        throw new AppError('rate-limited', 'at most 10 payment-method replacements a minute; try again later', {
          'retry-after': String(wait),
        });
      return reply.status(201).send({ approvalUrl: await replaceWallet(sub) });
    },
  );

  // docs/api.md, recovery links: the same, from a signed link in an e-mail, without signing in.
  app.post(
    '/v1/recovery/payment-method',
    {
      config: { rateLimit: { max: 10, timeWindow: '1 minute' } },
      schema: {
        tags: ['subscriptions'],
        summary: "Replace a subscription's payment method from a recovery link (no sign-in)",
        body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false }),
        response: {
          201: Type.Object({ approvalUrl: Type.String() }),
          401: Problem,
          409: Problem,
          429: Problem,
          502: Problem,
        },
      },
    },
    async (req, reply) => {
      const link = config.RECOVERY_LINK_SECRET
        ? readRecoveryToken(config.RECOVERY_LINK_SECRET, req.body.token, new Date())
        : null;
      const sub =
        link && isUuid(link.subscriptionId)
          ? await rt.db.selectFrom('subscriptions').selectAll().where('id', '=', link.subscriptionId).executeTakeFirst()
          : undefined;
      if (!sub)
        throw new AppError(
          'unauthorized',
          'this link is not valid or has expired: sign in to update your payment method',
        );
      return reply.status(201).send({ approvalUrl: await replaceWallet(sub) });
    },
  );

  /** PayPal's approval of a new wallet for a live subscription, and its request recorded. */
  async function replaceWallet(sub: SubscriptionRow): Promise<string> {
    if (!isLive(sub.status))
      throw new AppError('not-changeable', `a ${sub.status} subscription has no payment method to replace`);
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
    return token.approvalUrl;
  }
}
