import { randomBytes } from 'node:crypto';
import t from 'tap';
import pg from 'pg';
import { createTestDatabase } from '@billing/testing';
import { migrations } from '../src/migrations/index.js';
import { appUrl, migrateWithRoles, type DbRoles } from '../src/roles.js';

// Least privilege (issue 10, finding 7): `npm run migrate` makes an owner that holds the schema and
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
  for (const r of [roles.app, roles.owner]) await c.query(`drop role if exists ${r}`);
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

t.test('the app role reads, inserts and updates; it cannot delete, truncate or change the schema', async (t) => {
  const app = await as(appUrl(tdb.url, roles));
  t.teardown(() => app.end());
  t.equal((await app.query('select current_user as u')).rows[0].u, roles.app);
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
