import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Each outbox row names the relay that publishes it without a claim transaction: the pool of an
// app sets `billing.outbox_owner` at connect, and the column's default reads it, so rows built in
// SQL (receipts) are tagged too (docs/messages.md, the envelope and delivery). Rows written
// elsewhere (a script, a migration) have no owner and are published by any relay's poll.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table outbox add column owner text
    default nullif(current_setting('billing.outbox_owner', true), '')`.execute(db);
  await sql`create index outbox_owner_unpublished_idx on outbox (owner, seq) where published_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index outbox_owner_unpublished_idx`.execute(db);
  await sql`alter table outbox drop column owner`.execute(db);
}
