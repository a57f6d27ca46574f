import { Type } from 'typebox';
import { transact } from '@billing/db';
import { sql } from 'kysely';
import { AuthUnavailableError } from '@billing/auth-client';
import { endGrantsByOperator, lockKey, startManualGrant } from '@billing/billing-core';
import { subscriptionView } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { Page } from '@billing/http-api';
import {
  Accepted,
  errors,
  grantView,
  Reason,
  RoleName,
  UserDetail,
  UserId,
  UserListQuery,
  UserParams,
  UserSummary,
} from './schemas.js';

/** A user's roles (from the Auth service), subscriptions and grants; manual grants and revokes. */
export const usersApi: AdminPlugin = async (api, { rt, auth }) => {
  /**
   * Everyone this system knows of (a subscription, a payment or a grant), by user id, searched by
   * part of the id; the cursor is the last id of the page.
   */
  api.get(
    '/users',
    { schema: { tags: ['admin'], querystring: UserListQuery, response: { 200: Page(UserSummary), ...errors } } },
    async (req) => {
      const limit = req.query.limit ?? 20;
      let after: string | null = null;
      if (req.query.cursor) {
        after = Buffer.from(req.query.cursor, 'base64url').toString();
        if (!after) throw new AppError('validation', 'querystring.cursor is not a cursor this API gave out');
      }
      const like = req.query.q ? `%${req.query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
      const { rows } = await sql<{
        user_id: string;
        subscriptions: string;
        active: string;
        payments: string;
        last_at: Date;
      }>`
        with known as (
          select user_id, created_at as at, 1 as sub, (status in ('trialing', 'active', 'past_due'))::int as active, 0 as pay from subscriptions
          union all select user_id, created_at, 0, 0, 1 from payments
          union all select user_id, started_at, 0, 0, 0 from role_grants
        )
        select user_id, sum(sub) as subscriptions, sum(active) as active, sum(pay) as payments, max(at) as last_at
        from known
        where (${like}::text is null or user_id ilike ${like})
          and (${after}::text is null or user_id > ${after})
        group by user_id
        order by user_id
        limit ${limit + 1}`.execute(rt.db);
      const page = rows.slice(0, limit);
      return {
        items: page.map((r) => ({
          userId: r.user_id,
          subscriptions: Number(r.subscriptions),
          activeSubscriptions: Number(r.active),
          payments: Number(r.payments),
          lastActivityAt: new Date(r.last_at).toISOString(),
        })),
        nextCursor: rows.length > limit ? Buffer.from(page[page.length - 1]!.user_id).toString('base64url') : null,
      };
    },
  );

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
        grants: grants.map(grantView),
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
      await transact(rt.db, async (trx) => {
        await lockKey(trx, `role:${userId}:${role}`);
        const { grantId, existed } = await startManualGrant(trx, { userId, role, reason, grantedBy: actor(req) });
        await audit(trx, {
          actor: actor(req),
          action: 'role.grant',
          target: `user:${userId}`,
          reason,
          before: { role, manualGrant: existed ? grantId : null },
          after: { role, manualGrant: grantId },
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
      await transact(rt.db, async (trx) => {
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
        const ended = await endGrantsByOperator(trx, userId, role, reason ?? 'revoked by an operator');
        await audit(trx, {
          actor: actor(req),
          action: 'role.revoke',
          target: `user:${userId}`,
          reason,
          before: { role, liveGrants: ended },
          after: { role, liveGrants: [] },
        });
      });
      return reply.status(202).send({ status: 'accepted' });
    },
  );
};
