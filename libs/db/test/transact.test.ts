import t from 'tap';
import pg from 'pg';
import { sql } from 'kysely';
import { createTestDatabase } from '@billing/testing';
import { createDb } from '../src/connection.js';
import { transact } from '../src/transact.js';

// docs/guarantees.md, deadlocks: a transaction Postgres ends to break a deadlock is run again.
const tdb = await createTestDatabase();
t.teardown(() => tdb.drop());
const db = createDb(tdb.url, { max: 3 });
t.teardown(() => db.destroy());
await sql`create table a (id int primary key, n int not null default 0)`.execute(db);
await sql`create table b (id int primary key, n int not null default 0)`.execute(db);
await sql`insert into a (id) values (1); insert into b (id) values (1)`.execute(db);

t.test('the victim of a deadlock is run again and commits once; the other side commits too', async (t) => {
  const other = new pg.Client({ connectionString: tdb.url });
  await other.connect();
  t.teardown(() => other.end());
  // The other side checks for deadlocks later: Postgres ends ours.
  await other.query(`set deadlock_timeout = '20s'`);
  await other.query('begin');
  await other.query('update b set n = n + 1 where id = 1');
  let runs = 0;
  const ours = transact(db, async (trx) => {
    runs++;
    await sql`update a set n = n + 1 where id = 1`.execute(trx);
    await sql`update b set n = n + 1 where id = 1`.execute(trx);
    return runs;
  });
  const waiting = async () =>
    (
      await sql<{ n: string }>`select count(*) as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`.execute(db)
    ).rows[0]!.n !== '0';
  while (!(await waiting())) await new Promise((r) => setTimeout(r, 20));
  const theirs = other.query('update a set n = n + 1 where id = 1').then(() => other.query('commit'));
  t.equal(await ours, 2, 'run twice: ended once by the deadlock, then committed');
  await theirs;
  const [a, b] = await Promise.all([
    sql<{ n: number }>`select n from a`.execute(db),
    sql<{ n: number }>`select n from b`.execute(db),
  ]);
  t.same([a.rows[0]!.n, b.rows[0]!.n], [2, 2], 'each side counted once');
});

t.test('any other error is the caller’s at once', async (t) => {
  let runs = 0;
  await t.rejects(
    transact(db, async (trx) => {
      runs++;
      await sql`select 1 / 0`.execute(trx);
    }),
    /division by zero/,
  );
  t.equal(runs, 1);
});
