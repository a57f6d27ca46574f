import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// "Paid" means money held for the period: a payment refunded in full or charged back no longer pays
// it, so the period can be paid again (a buyer resuming after a paid-ahead renewal was lost).
// At most one payment per subscription and period holds money at a time.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index payments_one_paid_per_period`.execute(db);
  await sql`create unique index payments_one_paid_per_period on payments (subscription_id, period_index)
    where status in ('completed','partially_refunded')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index payments_one_paid_per_period`.execute(db);
  await sql`create unique index payments_one_paid_per_period on payments (subscription_id, period_index)
    where status in ('completed','partially_refunded','refunded','reversed')`.execute(db);
}
