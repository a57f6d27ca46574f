import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// A coupon is redeemed at most `max_redemptions_per_user` times by one user (null: no limit), so a
// first-period discount is not had again by re-subscribing after the first subscription ended.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table coupons add column max_redemptions_per_user integer default 1 check (max_redemptions_per_user > 0)`.execute(
    db,
  );
  await sql`create index coupon_redemptions_by_user on coupon_redemptions (coupon_code, user_id) where status = 'active'`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index coupon_redemptions_by_user`.execute(db);
  await sql`alter table coupons drop column max_redemptions_per_user`.execute(db);
}
