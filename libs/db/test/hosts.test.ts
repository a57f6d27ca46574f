import t from 'tap';
import { sql } from 'kysely';
import { createTestDatabase, freePort, startTcpProxy } from '@billing/testing';
import { createDb } from '../src/connection.js';
import { appUrl } from '../src/roles.js';
import { databaseHosts, withDatabaseName, withUser } from '../src/hosts.js';
import { SessionLocks } from '../src/session-locks.js';

// docs/guarantees.md, Postgres failover: DATABASE_URL naming several hosts, libpq style. The
// real failover (a streaming replica promoted) is tools/e2e/test/serial/pg-failover.test.ts.

t.test('a URL of several hosts: one URL per host, target_session_attrs taken out', async (t) => {
  const h = databaseHosts('postgres://u:p@db-0:5432,db-1:6432/billing?sslmode=disable&target_session_attrs=read-write');
  t.same(h, {
    urls: ['postgres://u:p@db-0:5432/billing?sslmode=disable', 'postgres://u:p@db-1:6432/billing?sslmode=disable'],
    readWrite: true,
  });
  t.same(databaseHosts('postgres://u@db:5432/billing'), { urls: ['postgres://u@db:5432/billing'], readWrite: false });
  t.same(databaseHosts('postgres://a,b/x').readWrite, false, 'any, by default');
  t.throws(() => databaseHosts('postgres://a,b/x?target_session_attrs=standby'), /not supported/);
  t.equal(
    withUser('postgres://admin:secret@a:1,b:2/billing?target_session_attrs=read-write', 'app role', 'p@ss'),
    'postgres://app%20role:p%40ss@a:1,b:2/billing?target_session_attrs=read-write',
  );
  t.equal(withDatabaseName('postgres://u@a:1,b:2/x?q=1', 'y'), 'postgres://u@a:1,b:2/y?q=1');
  t.equal(
    appUrl('postgres://admin@a:1,b:2/billing', { owner: 'o', app: 'app' }, 'billing-api'),
    'postgres://app_api@a:1,b:2/billing',
  );
});

const tdb = await createTestDatabase();
t.teardown(() => tdb.drop());
const real = new URL(tdb.url);
const name = real.pathname.slice(1);
/** tdb.url naming the hosts given (each `host:port`), read-write asked. */
const over = (hosts: string[]) =>
  `postgres://${real.username}@${hosts.join(',')}/${name}?target_session_attrs=read-write`;

t.test('the first host gone: every connection goes to the next, and stays there', async (t) => {
  const dead = await freePort();
  const db = createDb(over([`127.0.0.1:${dead}`, `${real.hostname}:${real.port || 5432}`]), { max: 3 });
  t.teardown(() => db.destroy());
  const rows = await Promise.all(
    Array.from({ length: 6 }, () => sql<{ one: number }>`select 1 as one`.execute(db).then((r) => r.rows[0]!.one)),
  );
  t.same(rows, [1, 1, 1, 1, 1, 1], 'no caller saw the dead host');
  const locks = new SessionLocks(over([`127.0.0.1:${dead}`, `${real.hostname}:${real.port || 5432}`]), 't');
  t.teardown(() => locks.close());
  t.same(await locks.tryTake(['k']), [true], 'a connection of its own finds the live host too');
});

t.test('hosts that take only read-only sessions are refused as an outage, until one takes writes', async (t) => {
  const proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
  t.teardown(() => proxy.close());
  // Both "hosts" are this server; the database refuses writes as a standby does (the admin's
  // connection, made before, is not read-only).
  const admin = createDb(tdb.url, { max: 1 });
  t.teardown(() => admin.destroy());
  await sql`alter database ${sql.id(name)} set default_transaction_read_only = on`.execute(admin);
  const db = createDb(over([`127.0.0.1:${proxy.port}`, `${real.hostname}:${real.port || 5432}`]), { max: 2 });
  t.teardown(() => db.destroy());
  const err = await sql`select 1`.execute(db).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.match(err, { code: '08001', message: /read-only/ }, 'an outage (08001): the consumers wait without using attempts');
  await sql`alter database ${sql.id(name)} reset default_transaction_read_only`.execute(admin);
  t.same(
    (await sql<{ one: number }>`select 1 as one`.execute(db)).rows,
    [{ one: 1 }],
    'a host takes writes again: served',
  );
});
