import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// The retention offer (docs/api.md): one coupon marked as the offer, made once per subscription to
// a buyer about to cancel; a redemption may start at a later period than the first.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('coupons')
    .addColumn('retention_offer', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await sql`create unique index coupons_one_retention_offer on coupons (retention_offer) where retention_offer`.execute(
    db,
  );
  await db.schema
    .alterTable('coupon_redemptions')
    .addColumn('from_period', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('subscriptions')
    .addColumn('retention_offered_at', 'timestamptz')
    .addColumn('retention_accepted_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('subscriptions')
    .dropColumn('retention_offered_at')
    .dropColumn('retention_accepted_at')
    .execute();
  await db.schema.alterTable('coupon_redemptions').dropColumn('from_period').execute();
  await sql`drop index coupons_one_retention_offer`.execute(db);
  await db.schema.alterTable('coupons').dropColumn('retention_offer').execute();
}
