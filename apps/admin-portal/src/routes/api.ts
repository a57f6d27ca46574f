import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { sql } from 'kysely';
import { AuthUnavailableError, type AuthClient } from '@billing/auth-client';
import {
  cancelSubscription,
  isUuid,
  keysetPage,
  lockKey,
  paymentView,
  refundableLeft,
  requestRefund,
  subscriptionView,
} from '@billing/billing-core';
import { ProblemSchema, RoleChangeRequested } from '@billing/contracts';
import { planProblems, type PlanRow } from '@billing/db';
import { DeadLetterNotReplayable, enqueue, replayDeadLetter } from '@billing/messaging';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { Runtime } from '@billing/runtime';
import { audit, requireAdmin } from '../admin.js';

const P = '/admin/api/v1';
const List = Type.Object({
  userId: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.String({ maxLength: 40 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});
const Reason = Type.String({ minLength: 1, maxLength: 1000 });
const errors = {
  400: ProblemSchema,
  401: ProblemSchema,
  403: ProblemSchema,
  404: ProblemSchema,
  409: ProblemSchema,
  422: ProblemSchema,
  503: ProblemSchema,
};

const planView = (p: PlanRow) => ({
  id: p.id,
  name: p.name,
  description: p.description,
  amount: p.amount,
  currency: p.currency.trim(),
  period: p.period,
  role: p.role,
  active: p.active,
});

/** SPEC §9's admin API, JSON for scripts; the pages call the same operations. */
export function adminApi(app: HttpApp, { rt, auth }: { rt: Runtime; auth: AuthClient }): void {
  const onRequest = requireAdmin(app.authenticate);
  const actor = (req: { userId: string }) => req.userId;

  app.get(`${P}/plans`, { onRequest }, async () => ({
    items: (await rt.db.selectFrom('plans').selectAll().orderBy('id').execute()).map(planView),
    nextCursor: null,
  }));

  app.post(
    `${P}/plans`,
    {
      onRequest,
      schema: { body: Type.Object({}, { additionalProperties: true }), response: { 201: Type.Unknown(), ...errors } },
    },
    async (req, reply) => {
      const problems = planProblems(req.body);
      if (problems.length) throw new AppError('validation', problems.join('; '));
      const plan = req.body as PlanRow;
      const created = await rt.db.transaction().execute(async (trx) => {
        const exists = await trx.selectFrom('plans').select('id').where('id', '=', plan.id).executeTakeFirst();
        if (exists) throw new AppError('validation', `a plan "${plan.id}" exists already; change it with PATCH`);
        const row = await trx
          .insertInto('plans')
          .values({
            id: plan.id,
            name: plan.name,
            description: plan.description,
            amount: plan.amount,
            currency: plan.currency,
            period: plan.period,
            role: plan.role,
            active: plan.active,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit(trx, {
          actor: actor(req),
          action: 'plan.create',
          target: `plan:${plan.id}`,
          reason: null,
          before: null,
          after: planView(row),
        });
        return row;
      });
      return reply.status(201).send(planView(created));
    },
  );

  app.patch(
    `${P}/plans/:id`,
    {
      onRequest,
      schema: { params: Type.Object({ id: Type.String() }), body: Type.Object({}, { additionalProperties: true }) },
    },
    async (req) => {
      return rt.db.transaction().execute(async (trx) => {
        const cur = await trx
          .selectFrom('plans')
          .selectAll()
          .where('id', '=', req.params.id)
          .forUpdate()
          .executeTakeFirst();
        if (!cur) throw new AppError('not-found', 'no such plan');
        const body = req.body as Record<string, unknown>;
        if ('id' in body && body['id'] !== cur.id) throw new AppError('validation', 'a plan id cannot change');
        const merged = { ...planView(cur), ...body };
        const problems = planProblems(merged);
        if (problems.length) throw new AppError('validation', problems.join('; '));
        const row = await trx
          .updateTable('plans')
          .set({
            name: merged.name,
            description: merged.description,
            amount: merged.amount,
            currency: merged.currency,
            period: merged.period,
            role: merged.role,
            active: merged.active,
            updated_at: sql`now()`,
          })
          .where('id', '=', cur.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit(trx, {
          actor: actor(req),
          action: 'plan.update',
          target: `plan:${cur.id}`,
          reason: null,
          before: planView(cur),
          after: planView(row),
        });
        return planView(row);
      });
    },
  );

  app.get(`${P}/payments`, { onRequest, schema: { querystring: List } }, async (req) => {
    let q = rt.db.selectFrom('payments').selectAll();
    if (req.query.userId) q = q.where('user_id', '=', req.query.userId);
    if (req.query.status) q = q.where('status', '=', req.query.status as never);
    const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor);
    return { items: rows.map((p) => ({ ...paymentView(p), userId: p.user_id })), nextCursor };
  });

  app.get(`${P}/payments/:id`, { onRequest, schema: { params: Type.Object({ id: Type.String() }) } }, async (req) => {
    const id = req.params.id;
    const p = isUuid(id)
      ? await rt.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirst()
      : undefined;
    if (!p) throw new AppError('not-found', 'no such payment');
    const events = await rt.db
      .selectFrom('provider_events')
      .select(['event_type', 'provider_event_id', 'received_at', 'outcome'])
      .where('payment_id', '=', id)
      .orderBy('received_at')
      .execute();
    const refunds = await rt.db
      .selectFrom('refunds')
      .selectAll()
      .where('payment_id', '=', id)
      .orderBy('created_at')
      .execute();
    return {
      ...paymentView(p),
      userId: p.user_id,
      providerOrderId: p.provider_order_id,
      providerCaptureId: p.provider_capture_id,
      events: events.map((e) => ({
        type: e.event_type,
        id: e.provider_event_id,
        receivedAt: e.received_at.toISOString(),
        outcome: e.outcome,
      })),
      refunds: refunds.map((r) => ({
        id: r.id,
        amount: r.amount,
        currency: r.currency.trim(),
        status: r.status === 'requested' ? 'pending' : r.status,
        origin: r.origin,
        reason: r.reason,
        failureReason: r.failure_reason,
        createdAt: r.created_at.toISOString(),
      })),
    };
  });

  app.post(
    `${P}/payments/:id/refund`,
    {
      onRequest,
      schema: {
        params: Type.Object({ id: Type.String() }),
        body: Type.Object(
          { amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })), reason: Reason },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const refundId = await rt.db.transaction().execute(async (trx) => {
        const p = isUuid(id)
          ? await trx.selectFrom('payments').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
          : undefined;
        if (!p) throw new AppError('not-found', 'no such payment');
        if (p.status !== 'completed' && p.status !== 'partially_refunded')
          throw new AppError('not-refundable', `a ${p.status} payment cannot be refunded`);
        const left = await refundableLeft(trx, p);
        const amount = req.body.amount ?? left;
        if (left <= 0) throw new AppError('not-refundable', 'nothing is left to refund');
        if (amount > left) throw new AppError('refund-exceeds', `at most ${left} can still be refunded`);
        const rid = await requestRefund(trx, p, amount, 'operator', req.body.reason, actor(req));
        await audit(trx, {
          actor: actor(req),
          action: 'payment.refund',
          target: `payment:${id}`,
          reason: req.body.reason,
          before: { refundedAmount: p.refunded_amount, status: p.status },
          after: { refundId: rid, amount },
        });
        return rid;
      });
      return reply.status(202).send({ refundId, status: 'pending' });
    },
  );

  app.get(`${P}/subscriptions`, { onRequest, schema: { querystring: List } }, async (req) => {
    let q = rt.db.selectFrom('subscriptions').selectAll();
    if (req.query.userId) q = q.where('user_id', '=', req.query.userId);
    if (req.query.status) q = q.where('status', '=', req.query.status as never);
    const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor);
    return { items: rows.map((s) => ({ ...subscriptionView(s), userId: s.user_id })), nextCursor };
  });

  app.post(
    `${P}/subscriptions/:id/cancel`,
    {
      onRequest,
      schema: {
        params: Type.Object({ id: Type.String() }),
        body: Type.Object(
          { mode: Type.Optional(Type.Enum(['at_period_end', 'immediately'])), reason: Reason },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const now = new Date();
      const mode = req.body.mode ?? 'at_period_end';
      const result = await rt.db.transaction().execute(async (trx) => {
        const sub = isUuid(req.params.id)
          ? await trx
              .selectFrom('subscriptions')
              .selectAll()
              .where('id', '=', req.params.id)
              .forUpdate()
              .executeTakeFirst()
          : undefined;
        if (!sub) throw new AppError('not-found', 'no such subscription');
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
            before: subscriptionView(sub, now),
            after: { ...subscriptionView(r.subscription, now), refundAmount: r.refundAmount },
          });
        return r;
      });
      return { ...subscriptionView(result.subscription, now), userId: result.subscription.user_id };
    },
  );

  app.get(
    `${P}/users/:userId`,
    { onRequest, schema: { params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 200 }) }) } },
    async (req) => {
      const userId = req.params.userId;
      let roles: string[];
      try {
        roles = await auth.getRoles(userId);
      } catch (err) {
        if (err instanceof AuthUnavailableError)
          throw new AppError('auth-service-unavailable', 'the Auth service is unreachable', { 'retry-after': '5' });
        throw err;
      }
      const subs = await rt.db
        .selectFrom('subscriptions')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .execute();
      const grants = await rt.db
        .selectFrom('role_grants')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('started_at', 'desc')
        .execute();
      return {
        userId,
        roles,
        subscriptions: subs.map((s) => subscriptionView(s)),
        grants: grants.map((g) => ({
          id: g.id,
          role: g.role,
          source: g.source,
          subscriptionId: g.subscription_id,
          reason: g.reason,
          grantedBy: g.granted_by,
          startedAt: g.started_at.toISOString(),
          endedAt: g.ended_at?.toISOString() ?? null,
          endReason: g.end_reason,
        })),
      };
    },
  );

  app.post(
    `${P}/users/:userId/roles`,
    {
      onRequest,
      schema: {
        params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 200 }) }),
        body: Type.Object(
          { role: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,100}$' }), reason: Reason },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const { userId } = req.params;
      const { role, reason } = req.body;
      await rt.db.transaction().execute(async (trx) => {
        await lockKey(trx, `role:${userId}:${role}`);
        const live = await trx
          .selectFrom('role_grants')
          .select('id')
          .where('user_id', '=', userId)
          .where('role', '=', role)
          .where('source', '=', 'manual')
          .where('ended_at', 'is', null)
          .executeTakeFirst();
        if (!live)
          await trx
            .insertInto('role_grants')
            .values({ id: randomUUID(), user_id: userId, role, source: 'manual', reason, granted_by: actor(req) })
            .execute();
        await enqueue(trx, RoleChangeRequested, { userId, role, source: 'manual', reason, forceRevoke: false });
        await audit(trx, {
          actor: actor(req),
          action: 'role.grant',
          target: `user:${userId}`,
          reason,
          before: null,
          after: { role },
        });
      });
      return reply.status(202).send({ status: 'accepted' });
    },
  );

  app.delete(
    `${P}/users/:userId/roles/:role`,
    {
      onRequest,
      schema: {
        params: Type.Object({
          userId: Type.String({ minLength: 1, maxLength: 200 }),
          role: Type.String({ minLength: 1, maxLength: 100 }),
        }),
      },
    },
    async (req, reply) => {
      const { userId, role } = req.params;
      const reason =
        typeof (req.body as { reason?: unknown } | undefined)?.reason === 'string'
          ? (req.body as { reason: string }).reason
          : null;
      await rt.db.transaction().execute(async (trx) => {
        await lockKey(trx, `role:${userId}:${role}`);
        const bySubscription = await trx
          .selectFrom('role_grants')
          .select('subscription_id')
          .where('user_id', '=', userId)
          .where('role', '=', role)
          .where('source', '=', 'subscription')
          .where('ended_at', 'is', null)
          .executeTakeFirst();
        if (bySubscription)
          throw new AppError(
            'role-held-by-subscription',
            `a live subscription (${bySubscription.subscription_id}) grants "${role}"; cancel it instead`,
          );
        await trx
          .updateTable('role_grants')
          .set({ ended_at: sql`now()`, end_reason: reason ?? 'revoked by an operator' })
          .where('user_id', '=', userId)
          .where('role', '=', role)
          .where('ended_at', 'is', null)
          .execute();
        await enqueue(trx, RoleChangeRequested, {
          userId,
          role,
          source: 'manual',
          reason: reason ?? 'revoked by an operator',
          forceRevoke: true,
        });
        await audit(trx, {
          actor: actor(req),
          action: 'role.revoke',
          target: `user:${userId}`,
          reason,
          before: { role },
          after: null,
        });
      });
      return reply.status(202).send({ status: 'accepted' });
    },
  );

  app.get(`${P}/dead-letters`, { onRequest, schema: { querystring: List } }, async (req) => {
    const rows = await rt.db
      .selectFrom('dead_letters')
      .selectAll()
      .orderBy('dead_at', 'desc')
      .limit(req.query.limit ?? 50)
      .execute();
    return {
      items: rows.map((d) => ({
        id: d.id,
        queue: d.queue,
        messageId: d.message_id,
        type: d.type,
        error: d.error,
        attempts: d.attempts,
        deadAt: d.dead_at.toISOString(),
        replayedAt: d.replayed_at?.toISOString() ?? null,
        replayCount: d.replay_count,
        body: d.body,
      })),
      nextCursor: null,
    };
  });

  app.post(
    `${P}/dead-letters/:id/replay`,
    { onRequest, schema: { params: Type.Object({ id: Type.String() }) } },
    async (req, reply) => {
      if (!isUuid(req.params.id)) throw new AppError('not-found', 'no such dead letter');
      try {
        await replayDeadLetter(rt.db, req.params.id);
      } catch (err) {
        if (err instanceof DeadLetterNotReplayable)
          throw new AppError(/no dead letter/.test(err.message) ? 'not-found' : 'validation', err.message);
        throw err;
      }
      await rt.db.transaction().execute((trx) =>
        audit(trx, {
          actor: actor(req),
          action: 'dead-letter.replay',
          target: `dead-letter:${req.params.id}`,
          reason: null,
          before: null,
          after: null,
        }),
      );
      return reply.status(202).send({ status: 'replayed' });
    },
  );

  app.get(`${P}/audit`, { onRequest, schema: { querystring: List } }, async (req) => {
    const rows = await rt.db
      .selectFrom('audit_log')
      .selectAll()
      .orderBy('at', 'desc')
      .limit(req.query.limit ?? 50)
      .execute();
    return {
      items: rows.map((a) => ({
        id: a.id,
        at: a.at.toISOString(),
        actor: a.actor,
        action: a.action,
        target: a.target,
        reason: a.reason,
        before: a.before,
        after: a.after,
      })),
      nextCursor: null,
    };
  });
}
