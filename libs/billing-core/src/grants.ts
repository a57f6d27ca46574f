import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { RoleChangeRequested } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { enqueue } from '@billing/messaging';

/** A subscription's grant starts; the role-worker applies docs/auth.md's rule when it handles the change. */
export async function startSubscriptionGrant(
  trx: Transaction<Database>,
  sub: Pick<SubscriptionRow, 'id' | 'user_id' | 'role'>,
  reason: string,
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
      })
      .execute();
  }
  await enqueue(trx, RoleChangeRequested, {
    userId: sub.user_id,
    role: sub.role,
    source: 'subscription',
    reason,
    forceRevoke: false,
  });
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
  if (ended.length)
    await enqueue(trx, RoleChangeRequested, {
      userId: sub.user_id,
      role: sub.role,
      source: 'subscription',
      reason,
      forceRevoke: false,
    });
}
