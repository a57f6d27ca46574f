import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrator.js';

/**
 * The two database roles (docs/data.md): the owner, that runs migrations and owns every table;
 * the app role the six apps connect as, that may read, insert and update rows and nothing more
 * (no DELETE, no TRUNCATE, no DDL). Names are configurable so that one server can hold several
 * installations (and the tests one pair per database).
 */
export interface DbRoles {
  owner: string;
  app: string;
  /** The app role's password; none: the server's own authentication decides (trust, peer, certificates). */
  appPassword?: string | undefined;
}

export const defaultRoles = (env: NodeJS.ProcessEnv = process.env): DbRoles => ({
  owner: env['DB_OWNER_ROLE'] || 'billing_owner',
  app: env['DB_APP_ROLE'] || 'billing_app',
  appPassword: env['DB_APP_PASSWORD'] || undefined,
});

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const ident = (name: string) => {
  if (!NAME.test(name)) throw new Error(`"${name}" is not a role name this tool accepts ([a-z_][a-z0-9_]*)`);
  return sql.id(name);
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/**
 * What `npm run migrate` does, connected as an administrator (a role that may create roles, or
 * the database's current owner once the roles exist): the roles made if missing, the migrations
 * applied as the owner, every table, sequence and function of the schema handed to the owner,
 * and the app role granted exactly SELECT, INSERT and UPDATE (and the sequences it needs).
 */
export async function migrateWithRoles(adminUrl: string, roles: DbRoles): Promise<{ applied: string[] }> {
  const admin = new Kysely({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: adminUrl, max: 1 }) }),
  });
  try {
    await ensureRoles(admin, roles);
  } finally {
    await admin.destroy();
  }
  // The migrations run with the owner's identity, so what they create is the owner's.
  const owner = new Kysely({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: adminUrl, max: 1, options: `-c role=${roles.owner}` }),
    }),
  });
  try {
    const results = await migrateToLatest(owner);
    await grantApp(owner, roles);
    return { applied: results.filter((r) => r.status === 'Success').map((r) => r.migrationName) };
  } finally {
    await owner.destroy();
  }
}

async function ensureRoles(admin: AnyDb, roles: DbRoles): Promise<void> {
  const exists = async (name: string) =>
    (await sql<{ n: number }>`select count(*)::int as n from pg_roles where rolname = ${name}`.execute(admin)).rows[0]!
      .n > 0;
  if (!(await exists(roles.owner))) await sql`create role ${ident(roles.owner)} nologin`.execute(admin);
  if (!(await exists(roles.app))) await sql`create role ${ident(roles.app)} login`.execute(admin);
  await sql`alter role ${ident(roles.app)} login nosuperuser nocreatedb nocreaterole noinherit`.execute(admin);
  if (roles.appPassword !== undefined)
    await sql`alter role ${ident(roles.app)} password ${sql.lit(roles.appPassword)}`.execute(admin);
  // The administrator acts as the owner (to migrate, and to hand it what it created before).
  await sql`grant ${ident(roles.owner)} to current_user`.execute(admin);
  const db = (await sql<{ d: string }>`select current_database() as d`.execute(admin)).rows[0]!.d;
  await sql`grant connect on database ${sql.id(db)} to ${ident(roles.app)}`.execute(admin);
  await sql`revoke create on schema public from public`.execute(admin);
  await sql`grant usage, create on schema public to ${ident(roles.owner)}`.execute(admin);
  // Tables made before the roles existed (an older installation) become the owner's.
  const owned = await sql<{ kind: string; name: string }>`
    select case c.relkind when 'S' then 'sequence' when 'v' then 'view' else 'table' end as kind, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'S', 'v')
      and pg_get_userbyid(c.relowner) <> ${roles.owner}
      and not (c.relkind = 'S' and exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype in ('a', 'i')))`.execute(
    admin,
  );
  for (const o of owned.rows)
    await sql`alter ${sql.raw(o.kind)} public.${sql.id(o.name)} owner to ${ident(roles.owner)}`.execute(admin);
  const fns = await sql<{ sig: string }>`
    select p.oid::regprocedure::text as sig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and pg_get_userbyid(p.proowner) <> ${roles.owner}`.execute(admin);
  for (const f of fns.rows) await sql`alter function ${sql.raw(f.sig)} owner to ${ident(roles.owner)}`.execute(admin);
}

/** The app role: rows in, rows read, rows changed; never removed, never the schema. */
async function grantApp(owner: AnyDb, roles: DbRoles): Promise<void> {
  const app = ident(roles.app);
  await sql`grant usage on schema public to ${app}`.execute(owner);
  await sql`revoke all on all tables in schema public from ${app}`.execute(owner);
  await sql`grant select, insert, update on all tables in schema public to ${app}`.execute(owner);
  await sql`grant usage, select on all sequences in schema public to ${app}`.execute(owner);
  await sql`alter default privileges for role ${ident(roles.owner)} in schema public grant select, insert, update on tables to ${app}`.execute(
    owner,
  );
  await sql`alter default privileges for role ${ident(roles.owner)} in schema public grant usage, select on sequences to ${app}`.execute(
    owner,
  );
}

/** The app role's connection URL: the administrator's, with the app role's name and password. */
export function appUrl(adminUrl: string, roles: DbRoles): string {
  const u = new URL(adminUrl);
  u.username = roles.app;
  u.password = roles.appPassword ?? '';
  return u.toString();
}
