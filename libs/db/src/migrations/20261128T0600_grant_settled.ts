import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// When the role-worker has applied a grant's end at the Auth service (docs/auth.md, grants): until then
// the role the Auth service shows is still ours, whatever a checkout reads there.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('role_grants').addColumn('settled_at', 'timestamptz').execute();
  await sql`update role_grants set settled_at = ended_at where ended_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('role_grants').dropColumn('settled_at').execute();
}
