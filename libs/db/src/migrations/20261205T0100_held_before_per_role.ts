import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Whether the user held a role before any grant of ours is known per (user, role), on each grant a
// subscription starts (docs/auth.md): a plan change to another role reads it for the new role.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table role_grants add column held_before boolean not null default false`.execute(db);
  await sql`
    update role_grants g set held_before = s.role_held_before
    from subscriptions s
    where g.subscription_id = s.id and g.role = s.role and s.role_held_before
  `.execute(db);
  await sql`alter table plan_changes add column role_held_before boolean`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table plan_changes drop column role_held_before`.execute(db);
  await sql`alter table role_grants drop column held_before`.execute(db);
}
