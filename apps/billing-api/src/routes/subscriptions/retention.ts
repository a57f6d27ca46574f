import { Type } from 'typebox';
import { transact } from '@billing/db';
import { acceptRetentionOffer, makeRetentionOffer } from '@billing/billing-core';
import { Nullable, RetentionOfferSchema, subscriptionView } from '@billing/http-api';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../../app.js';
import { IdParams, Problem, SubscriptionSchema } from '../../schemas.js';
import { ownSubscriptions } from './shared.js';

/** docs/api.md, retention offer: made once to a buyer about to cancel, and accepted. */
export function retentionRoutes(app: HttpApp, deps: BillingApiDeps): void {
  const { rt } = deps;
  const { lockOwn } = ownSubscriptions(rt.db);

  app.post(
    '/v1/subscriptions/:id/retention-offer',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: 'The retention offer for a buyer about to cancel: made once per subscription, else null',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: Type.Object({ offer: Nullable(RetentionOfferSchema) }), 401: Problem, 404: Problem },
      },
    },
    async (req) => {
      const offer = await transact(rt.db, async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        return makeRetentionOffer(trx, sub, new Date());
      });
      if (offer)
        rt.logger.info('retention offer made', { subscriptionId: req.params.id, couponCode: offer.couponCode });
      return { offer };
    },
  );

  app.post(
    '/v1/subscriptions/:id/retention-offer/accept',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['subscriptions'],
        summary: 'Accept the retention offer made: its coupon from the next period not yet charged',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: SubscriptionSchema, 401: Problem, 404: Problem, 409: Problem },
      },
    },
    async (req) => {
      const now = new Date();
      const row = await transact(rt.db, async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        if (!(await acceptRetentionOffer(trx, sub, now)))
          throw new AppError(
            'offer-not-available',
            'no retention offer to accept: none was made, it was accepted already, or it no longer applies',
          );
        return sub;
      });
      rt.logger.info('retention offer accepted', { subscriptionId: row.id });
      return subscriptionView(row, now);
    },
  );
}
