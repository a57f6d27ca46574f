import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Pause and resume (docs/api.md): the status `paused`, the pause in effect on the subscription,
// every pause kept in `subscription_pauses` (never deleted), and the plan's longest pause.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop constraint subscriptions_status_check`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_status_check
    check (status in ('pending','trialing','active','past_due','paused','cancelled','expired'))`.execute(db);
  await db.schema
    .alterTable('subscriptions')
    .addColumn('paused_at', 'timestamptz')
    .addColumn('resumes_at', 'timestamptz')
    .execute();
  await sql`alter table subscriptions add constraint subscriptions_pause_check
    check ((status = 'paused') = (paused_at is not null) and (paused_at is null) = (resumes_at is null))`.execute(db);
  await sql`create index subscriptions_resume_due on subscriptions (resumes_at) where status = 'paused'`.execute(db);
  await db.schema.alterTable('plans').addColumn('max_pause', 'text').execute();
  await db.schema
    .createTable('subscription_pauses')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('subscription_id', 'uuid', (c) => c.notNull().references('subscriptions.id'))
    .addColumn('paused_at', 'timestamptz', (c) => c.notNull())
    .addColumn('resumes_at', 'timestamptz', (c) => c.notNull())
    .addColumn('resumed_at', 'timestamptz')
    .addColumn('paused_by', 'text', (c) => c.notNull())
    .addColumn('resumed_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // One pause at a time.
  await sql`create unique index subscription_pauses_one_open on subscription_pauses (subscription_id)
    where resumed_at is null`.execute(db);
  await sql`create trigger subscription_pauses_no_delete before delete on subscription_pauses for each row execute function refuse_delete()`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('subscription_pauses').execute();
  await db.schema.alterTable('plans').dropColumn('max_pause').execute();
  await sql`alter table subscriptions drop constraint subscriptions_pause_check`.execute(db);
  await db.schema.alterTable('subscriptions').dropColumn('paused_at').dropColumn('resumes_at').execute();
  await sql`alter table subscriptions drop constraint subscriptions_status_check`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_status_check
    check (status in ('pending','trialing','active','past_due','cancelled','expired'))`.execute(db);
}
