import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Plan changes (docs/api.md, plan changes). A change of period length starts a new period now: periods
// k ≥ anchor_index run from anchor_at in the new period length (those before keep the dates
// their payments recorded). An upgrade is paid by a payment of kind `upgrade` for the period
// in effect, so "one payment holds a period" counts first payments and renewals only. A
// downgrade waits in scheduled_plan_id until the period end. Each change is a row of
// plan_changes, which is never deleted.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('subscriptions')
    .addColumn('anchor_index', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('scheduled_plan_id', 'text', (c) => c.references('plans.id'))
    .addColumn('scheduled_change_at', 'timestamptz')
    .execute();
  await sql`alter table payments drop constraint payments_kind_check`.execute(db);
  await sql`alter table payments add constraint payments_kind_check check (kind in ('initial','renewal','upgrade'))`.execute(
    db,
  );
  await sql`drop index payments_one_paid_per_period`.execute(db);
  await sql`create unique index payments_one_paid_per_period on payments (subscription_id, period_index)
    where status in ('completed','partially_refunded') and kind in ('initial','renewal')`.execute(db);
  await db.schema
    .createTable('plan_changes')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('subscription_id', 'uuid', (c) => c.notNull().references('subscriptions.id'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('from_plan_id', 'text', (c) => c.notNull().references('plans.id'))
    .addColumn('to_plan_id', 'text', (c) => c.notNull().references('plans.id'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('upgrade','period_change','downgrade')`))
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('pending','scheduled','applied','failed','dropped')`),
    )
    .addColumn('amount', 'bigint', (c) => c.notNull().check(sql`amount >= 0`))
    .addColumn('credit', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('refund_excess', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('currency', 'char(3)', (c) => c.notNull())
    .addColumn('payment_id', 'uuid', (c) => c.references('payments.id'))
    .addColumn('effective_at', 'timestamptz', (c) => c.notNull())
    .addColumn('failure_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // At most one change in flight or waiting per subscription.
  await sql`create unique index plan_changes_one_open on plan_changes (subscription_id)
    where status in ('pending','scheduled')`.execute(db);
  await sql`create index plan_changes_payment on plan_changes (payment_id) where payment_id is not null`.execute(db);
  await sql`create trigger plan_changes_no_delete before delete on plan_changes
    for each row execute function refuse_delete()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('plan_changes').execute();
  await sql`drop index payments_one_paid_per_period`.execute(db);
  await sql`create unique index payments_one_paid_per_period on payments (subscription_id, period_index)
    where status in ('completed','partially_refunded')`.execute(db);
  await sql`alter table payments drop constraint payments_kind_check`.execute(db);
  await sql`alter table payments add constraint payments_kind_check check (kind in ('initial','renewal'))`.execute(db);
  await db.schema
    .alterTable('subscriptions')
    .dropColumn('anchor_index')
    .dropColumn('scheduled_plan_id')
    .dropColumn('scheduled_change_at')
    .execute();
}
