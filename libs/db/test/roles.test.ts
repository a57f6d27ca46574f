import { randomBytes } from 'node:crypto';
import t from 'tap';
import pg from 'pg';
import { createTestDatabase } from '@billing/testing';
import { migrations } from '../src/migrations/index.js';
import { APP_ROLE_SUFFIX, appRole, appUrl, migrateWithRoles, type AppName, type DbRoles } from '../src/roles.js';

// Least privilege (docs/guarantees.md, an app's database credentials leaked): `npm run migrate` makes an owner that holds the schema and
// an app role that can read, insert and update rows and nothing else. Checked on a real server.
const suffix = randomBytes(4).toString('hex');
const roles: DbRoles = { owner: `t_owner_${suffix}`, app: `t_app_${suffix}` };
const tdb = await createTestDatabase();

async function as(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}
const admin = await as(tdb.url);
t.teardown(async () => {
  await admin.end();
  await tdb.drop();
  const c = await as(tdb.url.replace(/\/[^/]+$/, '/postgres'));
  for (const r of [...(Object.keys(APP_ROLE_SUFFIX) as AppName[]).map((a) => appRole(roles, a)), roles.owner])
    await c.query(`drop role if exists ${r}`);
  await c.end();
});

t.test('a database migrated before the roles existed is handed to the owner', async (t) => {
  // An older installation: a table the administrator made.
  await admin.query('create table legacy_notes (id serial primary key, note text)');
  const { applied } = await migrateWithRoles(tdb.url, roles);
  t.equal(applied.length, Object.keys(migrations).length, `${applied.length} migrations applied as the owner`);
  const owners = await admin.query(
    `select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'S')`,
  );
  t.same(
    owners.rows.map((r) => r.owner),
    [roles.owner],
    'every table and sequence belongs to the owner',
  );
  t.same((await migrateWithRoles(tdb.url, roles)).applied, [], 'running it again applies nothing');
});

t.test('an app role reads, inserts and updates; it cannot delete, truncate or change the schema', async (t) => {
  const app = await as(appUrl(tdb.url, roles, 'admin-portal'));
  t.teardown(() => app.end());
  t.equal((await app.query('select current_user as u')).rows[0].u, appRole(roles, 'admin-portal'));
  await app.query(
    `insert into plans (id, name, description, amount, currency, period, role, active) values ('p1', 'P', '', 100, 'USD', 'P1M', 'r', true)`,
  );
  await app.query(`update plans set name = 'Q' where id = 'p1'`);
  t.equal((await app.query(`select name from plans where id = 'p1'`)).rows[0].name, 'Q');
  await app.query(`insert into legacy_notes (note) values ('a serial column works')`);
  const refused = async (what: string, statement: string) => {
    await t.rejects(app.query(statement), { code: /^42501$|^42P01$/ }, what);
  };
  await refused('DELETE', `delete from plans where id = 'p1'`);
  await refused('TRUNCATE (which would skip the delete triggers)', 'truncate plans cascade');
  await refused('DROP TABLE', 'drop table audit_log');
  await refused('ALTER TABLE', 'alter table payments add column x int');
  await refused('CREATE TABLE', 'create table sneaky (id int)');
  await refused('DISABLE TRIGGER', 'alter table payments disable trigger all');
  await refused('CREATE FUNCTION', `create function f() returns int language sql as 'select 1'`);
  t.equal((await app.query(`select count(*)::int as n from plans`)).rows[0].n, 1, 'the row is still there');
});

t.test('the owner cannot log in; names outside [a-z_][a-z0-9_]* are refused', async (t) => {
  const can = await admin.query('select rolcanlogin from pg_roles where rolname = $1', [roles.owner]);
  t.equal(can.rows[0].rolcanlogin, false);
  await t.rejects(migrateWithRoles(tdb.url, { owner: 'x; drop table plans', app: roles.app }), /not a role name/);
});

t.test('each app has its own login role with only the grants it uses', async (t) => {
  const conns = Object.fromEntries(
    await Promise.all(
      (Object.keys(APP_ROLE_SUFFIX) as AppName[]).map(async (a) => [a, await as(appUrl(tdb.url, roles, a))] as const),
    ),
  ) as Record<AppName, pg.Client>;
  t.teardown(() => Promise.all(Object.values(conns).map((c) => c.end())));
  const users = await Promise.all(
    Object.values(conns).map(async (c) => (await c.query('select current_user as u')).rows[0].u),
  );
  t.equal(new Set(users).size, 6, 'six apps, six roles');
  const allowed = (c: pg.Client, statement: string) =>
    c.query(statement).then(
      () => true,
      (err: { code?: string }) => {
        if (err.code === '42501') return false;
        throw err;
      },
    );
  const gw = conns['webhook-gateway'];
  t.equal(
    await allowed(
      gw,
      `insert into provider_events (id, provider, provider_event_id, event_type, payload) values (gen_random_uuid(), 'paypal', 'WH-ROLE-1', 'X', '{}')`,
    ),
    true,
    'the gateway stores events',
  );
  t.equal(
    await allowed(
      gw,
      `insert into outbox (id, exchange, routing_key, type, envelope, headers) values (gen_random_uuid(), 'x', 'y', 'z', '{}', '{}')`,
    ),
    true,
    'and their messages',
  );
  t.equal(await allowed(gw, 'select id from payments limit 1'), false, 'the gateway reads no payment');
  t.equal(await allowed(gw, 'select id from subscriptions limit 1'), false, 'nor a subscription');
  t.equal(await allowed(gw, `update provider_events set processed_at = now()`), false, 'nor marks an event processed');
  t.equal(await allowed(gw, 'select code from coupons limit 1'), false, 'nor reads coupons');
  const audit = `insert into audit_log (id, actor, action, target) values (gen_random_uuid(), 'op', 'x', 'y')`;
  for (const a of Object.keys(conns) as AppName[])
    t.equal(
      await allowed(conns[a], audit),
      a === 'admin-portal',
      `${a} ${a === 'admin-portal' ? 'writes' : 'cannot write'} the audit log`,
    );
  const counter = `insert into document_counters (kind, currency, year, last) values ('R', 'NOK', 2026, 1) on conflict (kind, currency, year) do update set last = document_counters.last + 1`;
  for (const a of Object.keys(conns) as AppName[])
    t.equal(
      await allowed(conns[a], counter),
      a === 'payment-worker',
      `${a} ${a === 'payment-worker' ? 'takes' : 'cannot take'} receipt numbers`,
    );
  t.equal(await allowed(conns['billing-api'], 'select id from receipts limit 1'), true, 'billing-api shows receipts');
  t.equal(await allowed(conns['billing-api'], `update receipts set description = 'x'`), false, 'but issues none');
});
