import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Renewal reminders (docs/scheduler.md): `subscription.renewal_upcoming` once per period, marked
// by the `paid_through` it was sent for. The scheduler's scan reads active subscriptions renewing
// soon, by `paid_through`.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('subscriptions').addColumn('renewal_reminded_for', 'timestamptz').execute();
  await sql`create index subscriptions_renewal_reminder_due on subscriptions (paid_through)
    where status = 'active' and cancel_at_period_end = false`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index subscriptions_renewal_reminder_due`.execute(db);
  await db.schema.alterTable('subscriptions').dropColumn('renewal_reminded_for').execute();
}
