import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// The catalogue changes rarely and is read on every checkout page: replicas keep it in memory and
// forget it when a plan changes. Any write to `plans` (the admin API, the catalog import, by hand)
// notifies the channel `plans_changed` at commit.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create function notify_plans_changed() returns trigger language plpgsql as $$
    begin perform pg_notify('plans_changed', ''); return null; end $$`.execute(db);
  await sql`create trigger plans_changed after insert or update or delete or truncate on plans
    for each statement execute function notify_plans_changed()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger plans_changed on plans`.execute(db);
  await sql`drop function notify_plans_changed()`.execute(db);
}
