import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Webhook events stored but never processed are handed to the payment-worker again by the
// scheduler's reconciliation (docs/scheduler.md, reconciliation); these count and time those sweeps.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('provider_events')
    .addColumn('sweeps', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('swept_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('provider_events_unprocessed_idx')
    .on('provider_events')
    .column('received_at')
    .where(sql.ref('processed_at'), 'is', null)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('provider_events_unprocessed_idx').execute();
  await db.schema.alterTable('provider_events').dropColumn('sweeps').dropColumn('swept_at').execute();
}
