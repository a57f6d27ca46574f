import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Why a buyer cancelled (docs/api.md, cancel), counted on the portal's home.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('subscriptions').addColumn('cancel_reason', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('subscriptions').dropColumn('cancel_reason').execute();
}
