import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// PayPal disputes (docs/disputes.md): one row per dispute, as PayPal last showed it, and the
// operators' requests about it (accept the claim, send evidence). Neither is ever deleted.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('disputes')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('provider_dispute_id', 'text', (c) => c.notNull().unique())
    .addColumn('payment_id', 'uuid', (c) => c.notNull().references('payments.id'))
    .addColumn('capture_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('stage', 'text')
    .addColumn('outcome', 'text')
    .addColumn('result', 'text', (c) => c.notNull().check(sql`result in ('open','lost','won')`))
    .addColumn('provider_updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index disputes_open on disputes (payment_id) where result = 'open'`.execute(db);
  await db.schema
    .createTable('dispute_actions')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('dispute_id', 'uuid', (c) => c.notNull().references('disputes.id'))
    .addColumn('action', 'text', (c) => c.notNull().check(sql`action in ('accept_claim','provide_evidence')`))
    .addColumn('note', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('requested','sent','refused')`))
    .addColumn('failure_reason', 'text')
    .addColumn('requested_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // At most one request of a dispute waits for PayPal at a time.
  await sql`create unique index dispute_actions_one_pending on dispute_actions (dispute_id) where status = 'requested'`.execute(
    db,
  );
  for (const t of ['disputes', 'dispute_actions'])
    await sql`create trigger ${sql.raw(`${t}_no_delete`)} before delete on ${sql.table(t)} for each row execute function refuse_delete()`.execute(
      db,
    );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('dispute_actions').execute();
  await db.schema.dropTable('disputes').execute();
}
