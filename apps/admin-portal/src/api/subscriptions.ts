import { Type } from 'typebox';
import { cancelSubscription, subscriptions } from '@billing/billing-core';
import { isUuid, keysetPage, Page, subscriptionView } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { AdminSubscription, errors, IdParams, ListQuery, Reason } from './schemas.js';

/** Subscriptions of all users, and an operator's cancel (with the pro-rata refund of docs/api.md). */
export const subscriptionsApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/subscriptions',
    { schema: { tags: ['admin'], querystring: ListQuery, response: { 200: Page(AdminSubscription), ...errors } } },
    async (req) => {
      let q = rt.db.selectFrom('subscriptions').selectAll();
      if (req.query.userId) q = q.where('user_id', '=', req.query.userId);
      if (req.query.status) q = q.where('status', '=', req.query.status as never);
      const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor);
      return { items: rows.map((s) => ({ ...subscriptionView(s), userId: s.user_id })), nextCursor };
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
      const result = await rt.db.transaction().execute(async (trx) => {
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
};
