import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Receipts and credit notes (docs/api.md, GET /v1/payments/:id/receipt): numbered without gaps per kind, currency and
// year. A number is taken from document_counters in the transaction that completes the payment
// or refund (the counter row stays locked until that commit; a rollback gives the number back),
// and a document, once issued, is never changed nor deleted.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('document_counters')
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('R','C')`))
    .addColumn('currency', 'char(3)', (c) => c.notNull())
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('last', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('document_counters_pk', ['kind', 'currency', 'year'])
    .execute();
  await db.schema
    .createTable('receipts')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('number', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('receipt','credit_note')`))
    .addColumn('payment_id', 'uuid', (c) => c.notNull().references('payments.id'))
    .addColumn('refund_id', 'uuid', (c) => c.references('refunds.id').unique())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull().check(sql`amount >= 0`))
    .addColumn('currency', 'char(3)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('sequence', 'integer', (c) => c.notNull())
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create unique index receipts_one_per_payment on receipts (payment_id) where kind = 'receipt'`.execute(db);
  await sql`create index receipts_payment on receipts (payment_id)`.execute(db);
  await sql`create function refuse_update() returns trigger language plpgsql as $$
    begin raise exception '% rows are never changed', tg_table_name; end $$`.execute(db);
  await sql`create trigger receipts_no_update before update on receipts for each row execute function refuse_update()`.execute(
    db,
  );
  await sql`create trigger receipts_no_delete before delete on receipts for each row execute function refuse_delete()`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('receipts').execute();
  await sql`drop function refuse_update()`.execute(db);
  await db.schema.dropTable('document_counters').execute();
}
