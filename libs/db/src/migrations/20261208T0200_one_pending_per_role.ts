import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// A user has at most one unfinished (pending) checkout per role: every checkout replaced the
// earlier ones under the user's lock, and now the index says so, so the common checkout needs no
// lock and no transaction (docs/api.md, how step 2 is written). Fails if the rule was ever broken.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create unique index subscriptions_one_pending_per_role on subscriptions (user_id, role)
    where status = 'pending'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index subscriptions_one_pending_per_role`.execute(db);
}
