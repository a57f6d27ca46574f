import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// The outbox is published by the process that committed it, woken in-process at the commit
// (docs/messages.md, outbox); the relays of the other processes poll slowly for what a crash left.
// The NOTIFY sent on every insert woke every relay of every app into a claim transaction.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop trigger outbox_notify on outbox`.execute(db);
  await sql`drop function notify_outbox()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create function notify_outbox() returns trigger language plpgsql as $$
    begin perform pg_notify('billing_outbox', ''); return null; end $$`.execute(db);
  await sql`create trigger outbox_notify after insert on outbox
    for each statement execute function notify_outbox()`.execute(db);
}
