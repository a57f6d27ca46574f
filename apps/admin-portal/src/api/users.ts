import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { sql } from 'kysely';
import { AuthUnavailableError } from '@billing/auth-client';
import { lockKey } from '@billing/billing-core';
import { RoleChangeRequested } from '@billing/contracts';
import { subscriptionView } from '@billing/http-api';
import { enqueue } from '@billing/messaging';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { Accepted, errors, Reason, RoleName, UserDetail, UserId, UserParams } from './schemas.js';

/** A user's roles (from the Auth service), subscriptions and grants; manual grants and revokes. */
export const usersApi: AdminPlugin = async (api, { rt, auth }) => {
  api.get(
    '/users/:userId',
    { schema: { tags: ['admin'], params: UserParams, response: { 200: UserDetail, ...errors } } },
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
      const [subs, grants] = await Promise.all([
        rt.db
          .selectFrom('subscriptions')
          .selectAll()
          .where('user_id', '=', userId)
          .orderBy('created_at', 'desc')
          .execute(),
        rt.db
          .selectFrom('role_grants')
          .selectAll()
          .where('user_id', '=', userId)
          .orderBy('started_at', 'desc')
          .execute(),
      ]);
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

  api.post(
    '/users/:userId/roles',
    {
      schema: {
        tags: ['admin'],
        params: UserParams,
        body: Type.Object({ role: RoleName, reason: Reason }, { additionalProperties: false }),
        response: { 202: Accepted, ...errors },
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

  api.delete(
    '/users/:userId/roles/:role',
    {
      // The body is optional: none at all reads as {}.
      preValidation: async (req) => {
        if (req.body === undefined) (req as { body: unknown }).body = {};
      },
      schema: {
        tags: ['admin'],
        params: Type.Object({ userId: UserId, role: Type.String({ minLength: 1, maxLength: 100 }) }),
        body: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
        response: { 202: Accepted, ...errors },
      },
    },
    async (req, reply) => {
      const { userId, role } = req.params;
      const reason = req.body.reason ?? null;
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
};
