import type { FastifyRequest } from 'fastify';
import type { Transaction } from 'kysely';
import { Type } from 'typebox';
import type { Database, SubscriptionRow } from '@billing/db';
import { transact } from '@billing/db';
import { cancelSubscription, pauseSubscription, resumePausedSubscription, subscriptions } from '@billing/billing-core';
import { isUuid, keysetPage, Page, paymentView, subscriptionView } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import {
  AdminSubscription,
  auditView,
  errors,
  grantView,
  IdParams,
  instant,
  Reason,
  SubscriptionDetail,
  SubscriptionListQuery,
} from './schemas.js';

/** Subscriptions of all users, and an operator's cancel (with the pro-rata refund of docs/api.md). */
export const subscriptionsApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/subscriptions',
    {
      schema: {
        tags: ['admin'],
        querystring: SubscriptionListQuery,
        response: { 200: Page(AdminSubscription), ...errors },
      },
    },
    async (req) => {
      const { userId, status, planId } = req.query;
      const [from, to] = [instant(req.query.from), instant(req.query.to)];
      let q = rt.db.selectFrom('subscriptions').selectAll();
      if (userId) q = q.where('user_id', '=', userId);
      if (status) q = q.where('status', '=', status);
      if (planId) q = q.where('plan_id', '=', planId);
      if (from) q = q.where('created_at', '>=', from);
      if (to) q = q.where('created_at', '<', to);
      const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor);
      return { items: rows.map((s) => ({ ...subscriptionView(s), userId: s.user_id })), nextCursor };
    },
  );

  api.get(
    '/subscriptions/:id',
    { schema: { tags: ['admin'], params: IdParams, response: { 200: SubscriptionDetail, ...errors } } },
    async (req) => {
      const id = req.params.id;
      const sub = isUuid(id)
        ? await rt.db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst()
        : undefined;
      if (!sub) throw new AppError('not-found', 'no such subscription');
      const [pays, grants, auditRows, changes] = await Promise.all([
        rt.db
          .selectFrom('payments')
          .selectAll()
          .where('subscription_id', '=', id)
          .orderBy('created_at', 'desc')
          .execute(),
        rt.db
          .selectFrom('role_grants')
          .selectAll()
          .where('subscription_id', '=', id)
          .orderBy('started_at', 'desc')
          .execute(),
        rt.db
          .selectFrom('audit_log')
          .selectAll()
          .where('target', '=', `subscription:${id}`)
          .orderBy('at', 'desc')
          .limit(100)
          .execute(),
        rt.db
          .selectFrom('plan_changes')
          .selectAll()
          .where('subscription_id', '=', id)
          .orderBy('created_at', 'desc')
          .execute(),
      ]);
      return {
        ...subscriptionView(sub),
        userId: sub.user_id,
        payments: pays.map((p) => ({ ...paymentView(p), userId: p.user_id })),
        grants: grants.map(grantView),
        audit: auditRows.map(auditView),
        planChanges: changes.map((c) => ({
          id: c.id,
          fromPlanId: c.from_plan_id,
          toPlanId: c.to_plan_id,
          kind: c.kind,
          status: c.status,
          amount: Number(c.amount),
          currency: c.currency,
          effectiveAt: c.effective_at.toISOString(),
          paymentId: c.payment_id,
          failureReason: c.failure_reason,
          createdAt: c.created_at.toISOString(),
        })),
      };
    },
  );

  api.post(
    '/subscriptions/:id/cancel',
    {
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: Type.Object(
          { mode: Type.Optional(Type.Enum(['at_period_end', 'immediately'])), reason: Reason },
          { additionalProperties: false },
        ),
        response: { 200: AdminSubscription, ...errors },
      },
    },
    async (req) => {
      const now = new Date();
      const mode = req.body.mode ?? 'at_period_end';
      const result = await transact(rt.db, async (trx) => {
        const sub = isUuid(req.params.id) ? await subscriptions.lock(trx, req.params.id) : undefined;
        if (!sub) throw new AppError('not-found', 'no such subscription');
        const before = subscriptionView(sub, now);
        const r = await cancelSubscription(trx, sub, mode, now, {
          by: `operator:${actor(req)}`,
          reason: req.body.reason,
        });
        if (r.changed)
          await audit(trx, {
            actor: actor(req),
            action: `subscription.cancel.${mode}`,
            target: `subscription:${sub.id}`,
            reason: req.body.reason,
            before,
            after: { ...subscriptionView(r.subscription, now), refundAmount: r.refundAmount },
          });
        return r;
      });
      return { ...subscriptionView(result.subscription, now), userId: result.subscription.user_id };
    },
  );

  // docs/api.md, pause and resume: an operator pauses (until resumesAt, at most the plan's maxPause) or resumes now.
  /** One operator change of a subscription: locked, changed by `run` (a refusal thrown), audited with before and after. */
  const audited = async (
    req: FastifyRequest,
    action: string,
    reason: string,
    run: (trx: Transaction<Database>, sub: SubscriptionRow, now: Date) => Promise<SubscriptionRow>,
  ) => {
    const now = new Date();
    const id = (req.params as { id: string }).id;
    const row = await transact(rt.db, async (trx) => {
      const sub = isUuid(id) ? await subscriptions.lock(trx, id) : undefined;
      if (!sub) throw new AppError('not-found', 'no such subscription');
      const before = subscriptionView(sub, now);
      const r = await run(trx, sub, now);
      await audit(trx, {
        actor: actor(req),
        action,
        target: `subscription:${sub.id}`,
        reason,
        before,
        after: subscriptionView(r, now),
      });
      return r;
    });
    return { ...subscriptionView(row, now), userId: row.user_id };
  };

  api.post(
    '/subscriptions/:id/pause',
    {
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: Type.Object(
          { resumesAt: Type.Optional(Type.String({ format: 'date-time' })), reason: Reason },
          { additionalProperties: false },
        ),
        response: { 200: AdminSubscription, ...errors },
      },
    },
    async (req) =>
      audited(req, 'subscription.pause', req.body.reason, async (trx, sub, now) => {
        const r = await pauseSubscription(trx, sub, {
          now,
          resumesAt: req.body.resumesAt ? new Date(req.body.resumesAt) : undefined,
          by: `operator:${actor(req)}`,
        });
        if ('code' in r) throw new AppError(r.code, r.detail);
        return r;
      }),
  );

  api.post(
    '/subscriptions/:id/resume',
    {
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: Type.Object({ reason: Reason }, { additionalProperties: false }),
        response: { 200: AdminSubscription, ...errors },
      },
    },
    async (req) =>
      audited(req, 'subscription.resume', req.body.reason, async (trx, sub, now) => {
        const r = await resumePausedSubscription(trx, sub, { now, by: `operator:${actor(req)}` });
        if (r === 'no-op') throw new AppError('not-resumable', `a ${sub.status} subscription is not paused`);
        return r;
      }),
  );
};
