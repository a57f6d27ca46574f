import t from 'tap';
import { sql } from 'kysely';
import { createTestDatabase } from '@billing/testing';
import { createDb, withConnectionPriority } from '../src/connection.js';

// A busy pool is a wait, not an error (docs/guarantees.md, backpressure): pg-pool fails a caller
// that waited 3 s for a connection; the gate in front of it makes that a wait, urgent callers first.
const tdb = await createTestDatabase();
t.teardown(() => tdb.drop());

t.test('twelve transactions of a second each on two connections: all commit, none told the pool is busy', async (t) => {
  const db = createDb(tdb.url, { max: 2 });
  t.teardown(() => db.destroy());
  const results = await Promise.allSettled(
    Array.from({ length: 12 }, (_, i) =>
      db.transaction().execute(async (trx) => {
        await sql`select pg_sleep(1)`.execute(trx);
        return i;
      }),
    ),
  );
  const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  t.same(
    failed.map((r) => (r.reason as Error).message),
    [],
    'no transaction failed (6 s of work on 2 connections: the last waited 5 s)',
  );
});

t.test('an urgent caller gets the next free connection before those who came earlier', async (t) => {
  const db = createDb(tdb.url, { max: 1 });
  t.teardown(() => db.destroy());
  const order: string[] = [];
  let release!: () => void;
  const held = db.transaction().execute(async (trx) => {
    await sql`select 1`.execute(trx);
    await new Promise<void>((r) => (release = r));
  });
  await new Promise((r) => setTimeout(r, 50));
  const normal = Array.from({ length: 3 }, (_, i) => sql`select 1`.execute(db).then(() => order.push(`normal ${i}`)));
  await new Promise((r) => setTimeout(r, 20));
  const first = withConnectionPriority(() => sql`select 1`.execute(db)).then(() => order.push('urgent'));
  release();
  await Promise.all([held, first, ...normal]);
  t.same(order, ['urgent', 'normal 0', 'normal 1', 'normal 2']);
});
