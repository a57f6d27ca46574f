import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt } from './common.js';

/** A PayPal wallet the buyer deleted: never attached to a subscription again (docs/webhooks.md). */
export interface RevokedVaultTokensTable {
  vault_id: string;
  revoked_at: CreatedAt;
}
export type RevokedVaultTokenRow = Selectable<RevokedVaultTokensTable>;
export type NewRevokedVaultTokenRow = Insertable<RevokedVaultTokensTable>;
