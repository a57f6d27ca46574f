import { Type } from 'typebox';
import { dropScheduledChange, planChangeFor, requestPlanChange } from '@billing/billing-core';
import { subscriptionView } from '@billing/http-api';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../../app.js';
import type { Catalogue } from '../../catalogue.js';
import {
  ChangeBody,
  ChangePreview,
  ChangeQuery,
  IdempotencyHeaders,
  IdParams,
  Problem,
  SubscriptionSchema,
} from '../../schemas.js';
import { withIdempotency } from '../../idempotency.js';
import { errors, ownSubscriptions, refused, rolesReader } from './shared.js';

/** The routes of plan changes: preview, request, drop the scheduled one (docs/api.md, plan changes). */
export function planChangeRoutes(app: HttpApp, deps: BillingApiDeps, catalogue: { read(): Promise<Catalogue> }): void {
  const { rt } = deps;
  const { lockOwn, readOwn } = ownSubscriptions(rt.db);
  const readRoles = rolesReader(deps.auth);

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
}
