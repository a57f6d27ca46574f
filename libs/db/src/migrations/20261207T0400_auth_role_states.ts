import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// What the role-worker's last change of a user's role made the Auth service show, so a change is
// one Auth call, not a read then a write (docs/auth.md, one Auth call per change). Never deleted.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('auth_role_states')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('held', 'boolean', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('auth_role_states_pkey', ['user_id', 'role'])
    .execute();
  // What the changes made so far left, from the outbox (kept whole): `role.granted` and
  // `role.revoked` went out once per change made at the Auth service, the last one per pair says
  // what it shows. A pair with neither (a role held before us) has no row: it is read or known from
  // its checkout, as before.
  await sql`insert into auth_role_states (user_id, role, held, updated_at)
    select distinct on (envelope->'data'->>'userId', envelope->'data'->>'role')
      envelope->'data'->>'userId', envelope->'data'->>'role', type = 'role.granted', created_at
    from outbox where type in ('role.granted', 'role.revoked')
    order by envelope->'data'->>'userId', envelope->'data'->>'role', seq desc`.execute(db);
  await sql`create trigger auth_role_states_no_delete before delete on auth_role_states
    for each row execute function refuse_delete()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('auth_role_states').execute();
}
