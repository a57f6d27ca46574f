import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Coupons (docs/api.md, coupons at checkout): a percentage or an amount off the first `duration_periods` periods
// (null: every period). `redeemed` counts live redemptions, changed only by one conditional
// UPDATE (redeem) or its reverse (a checkout cancelled or expired unpaid gives it back), so the
// limit holds under any concurrency. Redemptions are kept, released ones too.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('coupons')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('percent_off', 'integer', (c) => c.check(sql`percent_off between 1 and 100`))
    .addColumn('amount_off', 'bigint', (c) => c.check(sql`amount_off > 0`))
    .addColumn('currency', 'char(3)')
    .addColumn('duration_periods', 'integer', (c) => c.check(sql`duration_periods > 0`))
    .addColumn('max_redemptions', 'integer', (c) => c.check(sql`max_redemptions > 0`))
    .addColumn('redeemed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint(
      'coupons_one_discount',
      sql`(percent_off is not null and amount_off is null and currency is null) or (percent_off is null and amount_off is not null and currency is not null)`,
    )
    .addCheckConstraint(
      'coupons_within_limit',
      sql`redeemed >= 0 and (max_redemptions is null or redeemed <= max_redemptions)`,
    )
    .execute();
  await db.schema
    .createTable('coupon_redemptions')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('coupon_code', 'text', (c) => c.notNull().references('coupons.code'))
    .addColumn('subscription_id', 'uuid', (c) => c.notNull().unique().references('subscriptions.id'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active','released')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  for (const table of ['coupons', 'coupon_redemptions'])
    await sql`create trigger ${sql.raw(`${table}_no_delete`)} before delete on ${sql.table(table)} for each row execute function refuse_delete()`.execute(
      db,
    );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('coupon_redemptions').execute();
  await db.schema.dropTable('coupons').execute();
}
