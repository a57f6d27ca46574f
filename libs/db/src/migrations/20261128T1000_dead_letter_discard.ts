import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// An operator may discard a dead letter they judged not worth replaying: nothing is deleted, the
// row says who discarded it, when and why. A replayed message that dies again updates its row
// (`died_again_at`) instead of adding an identical one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('dead_letters')
    .addColumn('discarded_at', 'timestamptz')
    .addColumn('discarded_by', 'text')
    .addColumn('discard_reason', 'text')
    .addColumn('died_again_at', 'timestamptz')
    .execute();
  await sql`create index audit_log_at on audit_log (at desc, id desc)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index audit_log_at`.execute(db);
  await db.schema
    .alterTable('dead_letters')
    .dropColumn('discarded_at')
    .dropColumn('discarded_by')
    .dropColumn('discard_reason')
    .dropColumn('died_again_at')
    .execute();
}
