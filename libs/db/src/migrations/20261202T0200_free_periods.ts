import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// A coupon may make a period free (docs/api.md, coupons at checkout): that period's payment is recorded, for 0,
// as paid without a PayPal charge, so the period and its receipt are kept like any other.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table payments drop constraint payments_amount_check`.execute(db);
  await sql`alter table payments add constraint payments_amount_check check (amount >= 0)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table payments drop constraint payments_amount_check`.execute(db);
  await sql`alter table payments add constraint payments_amount_check check (amount > 0)`.execute(db);
}
