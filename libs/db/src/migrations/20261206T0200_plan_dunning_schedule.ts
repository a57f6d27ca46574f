import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// A plan's own dunning schedule (docs/scheduler.md, renewals and dunning): ISO 8601 durations from
// a failed renewal's first failure; null keeps DUNNING_RETRY_MS.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('plans')
    .addColumn('dunning_schedule', sql`text[]`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('plans').dropColumn('dunning_schedule').execute();
}
