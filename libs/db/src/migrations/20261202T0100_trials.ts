import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Free trials (docs/api.md, free trials): a plan may carry a trial period, copied to the subscription
// bought on it. The buyer's wallet is saved without a charge (PayPal's vault setup token); once it
// exists the subscription is `trialing` with its role granted, and the first period starts at the
// trial's end (anchor_at = paid_through = trial_end), charged through the vault like a renewal.
// One trial per user and role: a partial unique index over the subscriptions that started one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('plans').addColumn('trial_period', 'text').execute();
  await db.schema
    .alterTable('subscriptions')
    .addColumn('trial_period', 'text')
    .addColumn('trial_start', 'timestamptz')
    .addColumn('trial_end', 'timestamptz')
    .addColumn('trial_notice_at', 'timestamptz')
    .addColumn('trial_notice_sent_at', 'timestamptz')
    .execute();
  await sql`alter table subscriptions drop constraint subscriptions_status_check`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_status_check
    check (status in ('pending','trialing','active','past_due','cancelled','expired'))`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_trial_check
    check ((trial_start is null) = (trial_end is null) and (trial_start is null or trial_end > trial_start))`.execute(
    db,
  );
  await sql`create unique index subscriptions_one_trial_per_role on subscriptions (user_id, role)
    where trial_start is not null`.execute(db);
  await sql`create index subscriptions_trial_notice_due on subscriptions (trial_notice_at)
    where status = 'trialing' and trial_notice_sent_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index subscriptions_trial_notice_due`.execute(db);
  await sql`drop index subscriptions_one_trial_per_role`.execute(db);
  await sql`alter table subscriptions drop constraint subscriptions_trial_check`.execute(db);
  await sql`alter table subscriptions drop constraint subscriptions_status_check`.execute(db);
  await sql`alter table subscriptions add constraint subscriptions_status_check
    check (status in ('pending','active','past_due','cancelled','expired'))`.execute(db);
  await db.schema
    .alterTable('subscriptions')
    .dropColumn('trial_period')
    .dropColumn('trial_start')
    .dropColumn('trial_end')
    .dropColumn('trial_notice_at')
    .dropColumn('trial_notice_sent_at')
    .execute();
  await db.schema.alterTable('plans').dropColumn('trial_period').execute();
}
