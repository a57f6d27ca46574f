import { RoleChangeRequested, RoleGranted, RoleRevoked } from '@billing/contracts';
import type { AuthClient } from '@billing/auth-client';
import { lockKey } from '@billing/billing-core';
import { decideRoleAction } from '@billing/domain';
import { Consumer, enqueue, ROLE_RETRY_DELAYS_MS, WORK_QUEUES, type HandlerMap, type WorkQueueSpec } from '@billing/messaging';
import { declarePublishedTopology, type Runtime } from '@billing/runtime';
import { sql } from 'kysely';

export const ROLE_MAX_ATTEMPTS = ROLE_RETRY_DELAYS_MS.length + Math.ceil((24 * 3_600_000) / 60_000) + 1;

export const roleQueue: WorkQueueSpec = WORK_QUEUES.role;

export interface Worker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const contracts = [RoleChangeRequested] as const;

/**
 * The role-worker: applies role changes at the Auth service one at a time per user and role,
 * evaluating SPEC §6's rule when the change is applied (not when it was queued), so a late
 * revoke never undoes a newer grant; `role.granted`/`role.revoked` only for real changes.
 */
export function buildWorker({ rt, auth, retryDelaysMs }: { rt: Runtime; auth: AuthClient; retryDelaysMs?: readonly number[] }): Worker {
  const handlers: HandlerMap<typeof contracts> = {
    'role.change.requested': async ({ trx, envelope, logger }) => {
      const { userId, role, source, reason, forceRevoke } = envelope.data;
      await lockKey(trx, `role:${userId}:${role}`);
      const live = await trx.selectFrom('role_grants').select((eb) => eb.fn.countAll<string>().as('n'))
        .where('user_id', '=', userId).where('role', '=', role).where('ended_at', 'is', null).executeTakeFirstOrThrow();
      // Whether the user held the role before us is read at each checkout; the latest one decides.
      const latest = await trx.selectFrom('subscriptions').select('role_held_before').where('user_id', '=', userId).where('role', '=', role)
        .where('status', '!=', 'pending').orderBy('created_at', 'desc').limit(1).executeTakeFirst();
      const heldNow = (await auth.getRoles(userId)).includes(role);
      const action = decideRoleAction({ liveGrants: Number(live.n), heldBeforeUs: latest?.role_held_before ?? false, forceRevoke, heldNow });
      if (action === 'grant') {
        await auth.grantRole(userId, role);
        await enqueue(trx, RoleGranted, { userId, role, source, reason });
      } else if (action === 'revoke') {
        await auth.revokeRole(userId, role);
        await enqueue(trx, RoleRevoked, { userId, role, source, reason });
      }
      // Every ended grant of this user and role is now applied at the Auth service.
      await trx.updateTable('role_grants').set({ settled_at: sql`now()` }).where('user_id', '=', userId).where('role', '=', role)
        .where('ended_at', 'is not', null).where('settled_at', 'is', null).execute();
      logger.info('role change applied', { userId, role, action, liveGrants: Number(live.n), heldNow });
    },
  };
  const consumer = new Consumer({
    name: 'role-worker', broker: rt.broker, db: rt.db, logger: rt.logger, metrics: rt.metrics,
    queue: retryDelaysMs ? { ...roleQueue, retryDelaysMs } : roleQueue, contracts, handlers,
    maxAttempts: ROLE_MAX_ATTEMPTS, prefetch: 16, setup: declarePublishedTopology,
  });
  return { start: () => consumer.start(), stop: () => consumer.stop() };
}
