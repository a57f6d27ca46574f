import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// The PayPal wallets (vault ids) the buyer deleted (VAULT.PAYMENT-TOKEN.DELETED): never attached to
// a subscription again, whatever order PayPal delivers its webhooks in (docs/webhooks.md). Never
// deleted. Filled from the stored webhooks already applied.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('revoked_vault_tokens')
    .addColumn('vault_id', 'text', (c) => c.primaryKey())
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`insert into revoked_vault_tokens (vault_id, revoked_at)
    select resource_id, min(processed_at) from provider_events
    where event_type = 'VAULT.PAYMENT-TOKEN.DELETED' and processed_at is not null and resource_id is not null
    group by resource_id`.execute(db);
  await sql`create trigger revoked_vault_tokens_no_delete before delete on revoked_vault_tokens
    for each row execute function refuse_delete()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('revoked_vault_tokens').execute();
}
