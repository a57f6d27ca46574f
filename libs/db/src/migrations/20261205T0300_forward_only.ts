import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// The audit log is insert-only (an UPDATE is refused like a DELETE), and a document counter only
// moves forward: rewinding one would issue a receipt number twice (docs/guarantees.md).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create trigger audit_log_no_update before update on audit_log for each row execute function refuse_update()`.execute(
    db,
  );
  await sql`create function refuse_counter_rewind() returns trigger language plpgsql as $$
    begin
      if new.last < old.last or new.kind <> old.kind or new.currency <> old.currency or new.year <> old.year then
        raise exception 'document counter %-%-% only moves forward (% to %)', old.kind, old.currency, old.year, old.last, new.last;
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger document_counters_forward before update on document_counters for each row execute function refuse_counter_rewind()`.execute(
    db,
  );
  await sql`create trigger document_counters_no_delete before delete on document_counters for each row execute function refuse_delete()`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger document_counters_no_delete on document_counters`.execute(db);
  await sql`drop trigger document_counters_forward on document_counters`.execute(db);
  await sql`drop function refuse_counter_rewind()`.execute(db);
  await sql`drop trigger audit_log_no_update on audit_log`.execute(db);
}
