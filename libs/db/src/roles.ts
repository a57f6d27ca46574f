import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { poolHosts, withUser } from './hosts.js';
import { migrateToLatest } from './migrator.js';

/**
 * The database roles (docs/data.md): the owner, that runs migrations and owns every table; and one
 * login role per app (`<app>_<short>`: `billing_app_api`, `billing_app_gateway`, ...), each granted
 * only what that app uses (APP_GRANTS): rows read, inserted and updated, never removed, never the
 * schema. Names are configurable so that one server can hold several installations (and the tests
 * one set per database).
 */
export interface DbRoles {
  owner: string;
  /** The prefix of the apps' login roles (`<app>_api`, `<app>_gateway`, ...). */
  app: string;
  /** The app roles' password; none: the server's own authentication decides (trust, peer, certificates). */
  appPassword?: string | undefined;
}

export const defaultRoles = (env: NodeJS.ProcessEnv = process.env): DbRoles => ({
  owner: env['DB_OWNER_ROLE'] || 'billing_owner',
  app: env['DB_APP_ROLE'] || 'billing_app',
  appPassword: env['DB_APP_PASSWORD'] || undefined,
});

export type AppName =
  | 'billing-api'
  | 'webhook-gateway'
  | 'admin-portal'
  | 'payment-worker'
  | 'role-worker'
  | 'scheduler';

/** Each app's login role is `<DbRoles.app>_<short>`. */
export const APP_ROLE_SUFFIX: Record<AppName, string> = {
  'billing-api': 'api',
  'webhook-gateway': 'gateway',
  'admin-portal': 'portal',
  'payment-worker': 'payments',
  'role-worker': 'roles',
  scheduler: 'scheduler',
};

export const appRole = (roles: DbRoles, app: AppName): string => `${roles.app}_${APP_ROLE_SUFFIX[app]}`;

const ROWS = 'select, insert, update';
/**
 * What each app may do, table by table (docs/data.md): `others` for every table not named, a
 * table named with null gets nothing. The gateway stores webhook events and their messages and
 * nothing else; only the admin portal writes the audit log (insert-only: a trigger refuses
 * UPDATE); only the payment-worker takes receipt numbers (document_counters) and issues receipts.
 */
export const APP_GRANTS: Record<AppName, { others: string | null; tables: Record<string, string | null> }> = {
  'webhook-gateway': { others: null, tables: { provider_events: 'select, insert', outbox: ROWS } },
  'billing-api': { others: ROWS, tables: { audit_log: null, document_counters: null, receipts: 'select' } },
  'admin-portal': {
    others: ROWS,
    tables: { audit_log: 'select, insert', document_counters: 'select', receipts: 'select' },
  },
  'payment-worker': { others: ROWS, tables: { audit_log: null } },
  'role-worker': { others: ROWS, tables: { audit_log: null, document_counters: null, receipts: null } },
  scheduler: { others: ROWS, tables: { audit_log: null, document_counters: null, receipts: null } },
};

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
    dialect: new PostgresDialect({ pool: adminPool(adminUrl) }),
  });
  try {
    await ensureRoles(admin, roles);
  } finally {
    await admin.destroy();
  }
  // The migrations run with the owner's identity, so what they create is the owner's.
  const owner = new Kysely({
    dialect: new PostgresDialect({
      pool: adminPool(adminUrl, `-c role=${roles.owner}`),
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
  const exists = (name: string) => roleExists(admin, name);
  if (!(await exists(roles.owner))) await sql`create role ${ident(roles.owner)} nologin`.execute(admin);
  for (const app of Object.keys(APP_ROLE_SUFFIX) as AppName[]) {
    const name = appRole(roles, app);
    if (!(await exists(name))) await sql`create role ${ident(name)} login`.execute(admin);
    await sql`alter role ${ident(name)} login nosuperuser nocreatedb nocreaterole noinherit`.execute(admin);
    if (roles.appPassword !== undefined)
      await sql`alter role ${ident(name)} password ${sql.lit(roles.appPassword)}`.execute(admin);
  }
  // The one role all six apps shared before (an older installation) no longer logs in.
  if (await exists(roles.app)) await sql`alter role ${ident(roles.app)} nologin`.execute(admin);
  // The administrator acts as the owner (to migrate, and to hand it what it created before).
  await sql`grant ${ident(roles.owner)} to current_user`.execute(admin);
  const db = (await sql<{ d: string }>`select current_database() as d`.execute(admin)).rows[0]!.d;
  for (const app of Object.keys(APP_ROLE_SUFFIX) as AppName[])
    await sql`grant connect on database ${sql.id(db)} to ${ident(appRole(roles, app))}`.execute(admin);
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

/** Each app role: the rows APP_GRANTS gives it; never removed, never the schema. */
async function grantApp(owner: AnyDb, roles: DbRoles): Promise<void> {
  const tables = (
    await sql<{ name: string }>`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p', 'v')`.execute(owner)
  ).rows.map((r) => r.name);
  if (await roleExists(owner, roles.app)) {
    // The shared role of an older installation keeps nothing.
    await sql`revoke all on all tables in schema public from ${ident(roles.app)}`.execute(owner);
    await sql`revoke all on all sequences in schema public from ${ident(roles.app)}`.execute(owner);
  }
  for (const [name, grants] of Object.entries(APP_GRANTS) as [AppName, (typeof APP_GRANTS)[AppName]][]) {
    const app = ident(appRole(roles, name));
    await sql`grant usage on schema public to ${app}`.execute(owner);
    await sql`revoke all on all tables in schema public from ${app}`.execute(owner);
    for (const table of tables) {
      const privileges = table in grants.tables ? grants.tables[table] : grants.others;
      if (privileges) await sql`grant ${sql.raw(privileges)} on ${sql.table(table)} to ${app}`.execute(owner);
    }
    // Sequences number rows (the outbox's `seq`): every app that inserts needs them.
    await sql`grant usage, select on all sequences in schema public to ${app}`.execute(owner);
  }
}

async function roleExists(db: AnyDb, name: string): Promise<boolean> {
  return (
    (await sql<{ n: number }>`select count(*)::int as n from pg_roles where rolname = ${name}`.execute(db)).rows[0]!.n >
    0
  );
}

/** An app's connection URL: the administrator's, with that app's role name and the password. */
export function appUrl(adminUrl: string, roles: DbRoles, app: AppName): string {
  return withUser(adminUrl, appRole(roles, app), roles.appPassword ?? '');
}

/** A pool of one connection for `npm run migrate`, to whichever host of `url` takes writes. */
function adminPool(url: string, options?: string): pg.Pool {
  const hosts = poolHosts(url);
  const pool = new pg.Pool({ ...hosts.options, max: 1, ...(options ? { options } : {}) });
  hosts.retryConnect(pool);
  return pool;
}
