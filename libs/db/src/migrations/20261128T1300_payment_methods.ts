import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Replacing a payment method (docs/api.md, …/payment-method): when only the buyer can help (no wallet, a
// deleted payment token, payer action required) the subscription says so and is not charged
// again until the buyer saves a new wallet or the last dunning retry's time passes. Each
// replacement the buyer starts is a row (PayPal's setup token), never deleted.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('subscriptions')
    .addColumn('payment_method_required', 'text', (c) =>
      c.check(sql`payment_method_required in ('no_payment_method','payment_token_deleted','payer_action_required')`),
    )
    .addColumn('payment_method_deadline', 'timestamptz')
    .execute();
  await db.schema
    .createTable('payment_method_requests')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('subscription_id', 'uuid', (c) => c.notNull().references('subscriptions.id'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('setup_token_id', 'text', (c) => c.notNull().unique())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending','completed','cancelled','failed')`))
    .addColumn('payment_token_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create trigger payment_method_requests_no_delete before delete on payment_method_requests
    for each row execute function refuse_delete()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('payment_method_requests').execute();
  await db.schema
    .alterTable('subscriptions')
    .dropColumn('payment_method_required')
    .dropColumn('payment_method_deadline')
    .execute();
}
