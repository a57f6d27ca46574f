import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// The outbox relay is woken by NOTIFY billing_outbox. Sent by the database after any insert into
// `outbox` (once per statement; Postgres folds the repeats of one transaction into one, delivered at
// commit), so a writer no longer spends a round trip on `select pg_notify(...)` per message.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create function notify_outbox() returns trigger language plpgsql as $$
    begin perform pg_notify('billing_outbox', ''); return null; end $$`.execute(db);
  await sql`create trigger outbox_notify after insert on outbox
    for each statement execute function notify_outbox()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger outbox_notify on outbox`.execute(db);
  await sql`drop function notify_outbox()`.execute(db);
}
