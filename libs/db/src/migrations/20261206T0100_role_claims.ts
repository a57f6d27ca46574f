import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// A role-worker replica claims a user and role while it changes them at the Auth service
// (docs/auth.md): another replica taking a change for the same pair waits for the claim to be
// released (or to lapse, after a crash), so a role is never granted twice by two replicas at once.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table role_claims (
    user_id text not null,
    role text not null,
    holder text not null,
    until timestamptz,
    primary key (user_id, role)
  )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table role_claims`.execute(db);
}
