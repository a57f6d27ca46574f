import { transact } from '@billing/db';
import {
  cancelSubscription,
  pauseSubscription,
  resumePausedSubscription,
  resumeSubscription,
} from '@billing/billing-core';
import { subscriptionView } from '@billing/http-api';
import { NotResumableError } from '@billing/domain';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../../app.js';
import { CancelBody, IdParams, PauseBody, Problem, SubscriptionSchema } from '../../schemas.js';
import { errors, ownSubscriptions } from './shared.js';

/** The routes of cancel and resume (docs/api.md). */
export function lifecycleRoutes(app: HttpApp, deps: BillingApiDeps): void {
  const { rt } = deps;
  const { lockOwn } = ownSubscriptions(rt.db);

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
      const result = await transact(rt.db, async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        return cancelSubscription(trx, sub, mode, now, {
          by: `user:${req.userId}`,
          reason: `cancelled by the user (${mode})`,
          buyerReason: req.body.reason,
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
        summary: 'Resume a paused subscription now, or undo a cancel at the period end',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: SubscriptionSchema, 401: Problem, 404: Problem, 409: Problem },
      },
    },
    async (req) => {
      const now = new Date();
      const row = await transact(rt.db, async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        if (sub.status === 'paused') {
          await resumePausedSubscription(trx, sub, { now, by: `user:${req.userId}` });
          return sub;
        }
        await resumeSubscription(trx, sub, now).catch((err: unknown) => {
          if (err instanceof NotResumableError) throw new AppError('not-resumable', err.message);
          throw err;
        });
        return sub;
      });
      return subscriptionView(row, now);
    },
  );

  app.post(
    '/v1/subscriptions/:id/pause',
    {
      onRequest: app.authenticate,
      preValidation: async (req) => {
        if (req.body === undefined) (req as { body: unknown }).body = {};
      },
      schema: {
        tags: ['subscriptions'],
        summary: "Pause: no charge and no role until resumesAt (at most the plan's maxPause), the time left given back",
        security: [{ bearerAuth: [] }],
        params: IdParams,
        body: PauseBody,
        response: { 200: SubscriptionSchema, ...errors },
      },
    },
    async (req) => {
      const now = new Date();
      const resumesAt = req.body.resumesAt ? new Date(req.body.resumesAt) : undefined;
      const row = await transact(rt.db, async (trx) => {
        const sub = await lockOwn(trx, req.params.id, req.userId);
        const r = await pauseSubscription(trx, sub, { now, resumesAt, by: `user:${req.userId}` });
        if ('code' in r) throw new AppError(r.code, r.detail);
        return r;
      });
      rt.logger.info('subscription paused', { subscriptionId: row.id, resumesAt: row.resumes_at });
      return subscriptionView(row, now);
    },
  );
}
