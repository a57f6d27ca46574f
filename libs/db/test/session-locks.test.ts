import t from 'tap';
import { sql } from 'kysely';
import { SessionLocks } from '../src/session-locks.js';
import { createMigratedTestDb } from '../src/testing.js';

const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());

t.test('session locks: one holder at a time per key; a holder whose connection dies holds nothing', async (t) => {
  const a = new SessionLocks(tdb.url, 'test-a');
  const b = new SessionLocks(tdb.url, 'test-b');
  t.same(await a.tryTake(['k1', 'k2']), [true, true], 'a takes both');
  t.same(await b.tryTake(['k1', 'k3']), [false, true], 'b gets only the free one');
  await a.release(['k1']);
  t.same(await b.tryTake(['k1']), [true], 'released: b takes it');
  await b.release(['k1', 'k3']);
  // a still holds k2; its connection is cut from the server side, as when its process dies.
  const killed = await sql<{ n: number }>`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
    where application_name = 'test-a:locks'`.execute(tdb.db);
  t.equal(killed.rows[0]!.n, 1);
  const deadline = Date.now() + 5_000;
  let got = false;
  while (!got && Date.now() < deadline) got = (await b.tryTake(['k2']))[0]!;
  t.ok(got, "a's lock went with its connection");
  t.same(await a.tryTake(['k4']), [true], 'a takes again on a new connection');
  await a.close();
  await b.close();
});
