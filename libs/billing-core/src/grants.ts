import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { RoleChangeRequested } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { enqueue, enqueueMany } from '@billing/messaging';

/**
 * Whether `role`, which the Auth service showed the user holding (`roles`, read at `rolesReadAt`),
 * was held before us: no grant of ours lives for it, nor ended without its revoke being applied
 * before the read (docs/auth.md). Read when a subscription first grants a role: at checkout, and at
 * a plan change to another role.
 */
export async function roleHeldBefore(
  trx: Kysely<Database>,
  userId: string,
  role: string,
  roles: readonly string[],
  rolesReadAt: Date,
): Promise<boolean> {
  if (!roles.includes(role)) return false;
  const ours = await trx
    .selectFrom('role_grants')
    .select('id')
    .where('user_id', '=', userId)
    .where('role', '=', role)
    .where((eb) =>
      eb.or([eb('ended_at', 'is', null), eb('settled_at', 'is', null), eb('settled_at', '>=', rolesReadAt)]),
    )
    .executeTakeFirst();
  return !ours;
}

/** What the role-worker is asked to settle for a subscription's role (grant or revoke, by what the grants say). */
const subscriptionRoleChange = (sub: Pick<SubscriptionRow, 'user_id' | 'role'>, reason: string) => ({
  userId: sub.user_id,
  role: sub.role,
  source: 'subscription' as const,
  reason,
  forceRevoke: false,
});

/**
 * A subscription's grant starts, carrying whether the user held the role before us (`heldBefore`,
 * else the subscription's own, read at checkout); the role-worker applies docs/auth.md's rule.
 */
export async function startSubscriptionGrant(
  trx: Transaction<Database>,
  sub: Pick<SubscriptionRow, 'id' | 'user_id' | 'role' | 'role_held_before'>,
  reason: string,
  heldBefore: boolean = sub.role_held_before,
): Promise<void> {
  const live = await trx
    .selectFrom('role_grants')
    .select('id')
    .where('subscription_id', '=', sub.id)
    .where('ended_at', 'is', null)
    .executeTakeFirst();
  if (!live) {
    await trx
      .insertInto('role_grants')
      .values({
        id: randomUUID(),
        user_id: sub.user_id,
        role: sub.role,
        source: 'subscription',
        subscription_id: sub.id,
        reason,
        held_before: heldBefore,
      })
      .execute();
  }
  await enqueue(trx, RoleChangeRequested, subscriptionRoleChange(sub, reason));
}

/**
 * `startSubscriptionGrant` for many subscriptions at once (billing-core's `completeActivations`):
 * one multi-row INSERT of the grants of those that hold no live one (`live`, read under their
 * lock), one of their `role.change.requested`.
 */
export async function startSubscriptionGrants(
  trx: Transaction<Database>,
  subs: readonly { sub: Pick<SubscriptionRow, 'id' | 'user_id' | 'role' | 'role_held_before'>; live: boolean }[],
  reason: string,
): Promise<void> {
  const fresh = subs.filter((s) => !s.live).map((s) => s.sub);
  if (fresh.length)
    await trx
      .insertInto('role_grants')
      .values(
        fresh.map((sub) => ({
          id: randomUUID(),
          user_id: sub.user_id,
          role: sub.role,
          source: 'subscription' as const,
          subscription_id: sub.id,
          reason,
          held_before: sub.role_held_before,
        })),
      )
      .execute();
  await enqueueMany(
    trx,
    RoleChangeRequested,
    subs.map(({ sub }) => subscriptionRoleChange(sub, reason)),
  );
}

/** A subscription's grant ends (now); the role goes only if no other grant of ours holds it. */
export async function endSubscriptionGrant(
  trx: Transaction<Database>,
  sub: Pick<SubscriptionRow, 'id' | 'user_id' | 'role'>,
  reason: string,
): Promise<void> {
  const ended = await trx
    .updateTable('role_grants')
    .set({ ended_at: sql`now()`, end_reason: reason })
    .where('subscription_id', '=', sub.id)
    .where('ended_at', 'is', null)
    .returning('id')
    .execute();
  if (ended.length) await enqueue(trx, RoleChangeRequested, subscriptionRoleChange(sub, reason));
}

/**
 * An operator grants a role by hand (docs/auth.md, manual grants): the user's live manual grant
 * for it, or a new one, and the role change asked. Returns the grant's id and whether it was
 * already live. The caller holds the user-and-role lock.
 */
export async function startManualGrant(
  trx: Transaction<Database>,
  g: { userId: string; role: string; reason: string; grantedBy: string },
): Promise<{ grantId: string; existed: boolean }> {
  const live = await trx
    .selectFrom('role_grants')
    .select('id')
    .where('user_id', '=', g.userId)
    .where('role', '=', g.role)
    .where('source', '=', 'manual')
    .where('ended_at', 'is', null)
    .executeTakeFirst();
  const grantId = live?.id ?? randomUUID();
  if (!live)
    await trx
      .insertInto('role_grants')
      .values({
        id: grantId,
        user_id: g.userId,
        role: g.role,
        source: 'manual',
        reason: g.reason,
        granted_by: g.grantedBy,
      })
      .execute();
  await enqueue(trx, RoleChangeRequested, {
    userId: g.userId,
    role: g.role,
    source: 'manual',
    reason: g.reason,
    forceRevoke: false,
  });
  return { grantId, existed: Boolean(live) };
}

/**
 * An operator takes a role away (docs/auth.md): every live grant of ours for it ends and the role is
 * revoked even if the user held it before us (forceRevoke). Returns the grants ended. The caller
 * holds the user-and-role lock and has checked that no live subscription grants it.
 */
export async function endGrantsByOperator(
  trx: Transaction<Database>,
  userId: string,
  role: string,
  reason: string,
): Promise<string[]> {
  const ended = await trx
    .updateTable('role_grants')
    .set({ ended_at: sql`now()`, end_reason: reason })
    .where('user_id', '=', userId)
    .where('role', '=', role)
    .where('ended_at', 'is', null)
    .returning('id')
    .execute();
  await enqueue(trx, RoleChangeRequested, { userId, role, source: 'manual', reason, forceRevoke: true });
  return ended.map((g) => g.id);
}

/**
 * The role-worker applied a user's role at the Auth service: every grant for it that had ended by
 * `endedBy` (when the worker read what should be) is settled (docs/auth.md, a role held before us).
 */
export async function settleEndedGrants(
  trx: Transaction<Database>,
  userId: string,
  role: string,
  endedBy: Date,
): Promise<void> {
  await trx
    .updateTable('role_grants')
    .set({ settled_at: sql`now()` })
    .where('user_id', '=', userId)
    .where('role', '=', role)
    .where('ended_at', 'is not', null)
    .where('ended_at', '<=', endedBy)
    .where('settled_at', 'is', null)
    .execute();
}

/** `settleEndedGrants` for many users and roles, each with its own `endedBy`, in one UPDATE. */
export async function settleEndedGrantsMany(
  trx: Transaction<Database>,
  pairs: readonly { userId: string; role: string; endedBy: Date }[],
): Promise<void> {
  if (pairs.length === 0) return;
  await sql`update role_grants g set settled_at = now()
    from unnest(${pairs.map((p) => p.userId)}::text[], ${pairs.map((p) => p.role)}::text[],
      ${pairs.map((p) => p.endedBy.toISOString())}::timestamptz[]) as k(user_id, role, ended_by)
    where g.user_id = k.user_id and g.role = k.role and g.ended_at is not null and g.ended_at <= k.ended_by
      and g.settled_at is null`.execute(trx);
}
