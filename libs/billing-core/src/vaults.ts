import type { Transaction } from 'kysely';
import type { Database } from '@billing/db';
import { lockKey } from './locks.js';

// A wallet the buyer deleted at PayPal is never attached again (docs/webhooks.md, a deleted
// wallet): the deletion and every attachment take the vault id's transaction lock first, so
// whichever commits second sees the other.

const vaultKey = (vaultId: string) => `vault:${vaultId}`;

/** Takes the vault id's lock, then says whether the buyer deleted it (false: it may be attached). */
export async function vaultRevoked(trx: Transaction<Database>, vaultId: string): Promise<boolean> {
  await lockKey(trx, vaultKey(vaultId));
  const row = await trx
    .selectFrom('revoked_vault_tokens')
    .select('vault_id')
    .where('vault_id', '=', vaultId)
    .executeTakeFirst();
  return row !== undefined;
}

/** Takes the vault id's lock and records it as deleted, for good (run before its subscriptions are read). */
export async function recordVaultRevoked(trx: Transaction<Database>, vaultId: string): Promise<void> {
  await lockKey(trx, vaultKey(vaultId));
  await trx
    .insertInto('revoked_vault_tokens')
    .values({ vault_id: vaultId })
    .onConflict((oc) => oc.doNothing())
    .execute();
}
