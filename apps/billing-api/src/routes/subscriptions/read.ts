import { Type } from 'typebox';
import { keysetPage, subscriptionView } from '@billing/http-api';
import type { HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../../app.js';
import { IdParams, ListQuery, Problem, SubscriptionSchema } from '../../schemas.js';
import { ownSubscriptions } from './shared.js';

/** The routes of the caller's subscriptions, listed and one by one. */
export function readRoutes(app: HttpApp, deps: BillingApiDeps): void {
  const { rt } = deps;
  const { readOwn } = ownSubscriptions(rt.db);

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
      return subscriptionView(await readOwn(req.params.id, req.userId));
    },
  );
}
