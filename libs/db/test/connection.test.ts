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
  let holding!: () => void;
  const holds = new Promise<void>((r) => (holding = r));
  const held = db.transaction().execute(async (trx) => {
    await sql`select 1`.execute(trx);
    await new Promise<void>((r) => {
      release = r;
      holding();
    });
  });
  // Waits until the one connection is held (a fixed 50 ms was not always enough on a busy machine).
  await holds;
  const normal = Array.from({ length: 3 }, (_, i) => sql`select 1`.execute(db).then(() => order.push(`normal ${i}`)));
  await new Promise((r) => setTimeout(r, 20));
  const first = withConnectionPriority(() => sql`select 1`.execute(db)).then(() => order.push('urgent'));
  release();
  await Promise.all([held, first, ...normal]);
  t.same(order, ['urgent', 'normal 0', 'normal 1', 'normal 2']);
});

t.test('a transaction group: what is asked in one turn commits together; a failing one fails alone', async (t) => {
  const { TransactionGroup } = await import('../src/group.js');
  const db = createDb(tdb.url, { max: 4 });
  t.teardown(() => db.destroy());
  await sql`create table if not exists grouped (id int primary key, note text)`.execute(db);
  const closes: number[][] = [];
  const group = new TransactionGroup(db, {
    open: () => [] as number[],
    close: async (trx, w) => {
      closes.push([...w]);
      await sql`insert into grouped (id, note) values (${1000 + closes.length}, ${'window of ' + w.length})`.execute(
        trx,
      );
    },
  });
  const write = (id: number) =>
    group.run(async (trx, w) => {
      w.push(id);
      await sql`insert into grouped (id, note) values (${id}, 'row')`.execute(trx);
      return id;
    });
  t.same(await Promise.all([1, 2, 3, 4, 5].map(write)), [1, 2, 3, 4, 5]);
  t.same(closes, [[1, 2, 3, 4, 5]], 'five in one transaction, its window closed once');
  t.same(group.stats, { groups: 1, transactions: 5, redone: 0 });
  // One of them fails (a duplicate key): the group is redone one by one, the others commit.
  const results = await Promise.allSettled([6, 1, 7].map(write));
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.equal(group.stats.redone, 1);
  const ids = (await sql<{ id: number }>`select id from grouped where note = 'row' order by id`.execute(db)).rows.map(
    (r) => r.id,
  );
  t.same(ids, [1, 2, 3, 4, 5, 6, 7], 'each row once');
});

t.test(
  "a group's window locks up front what its items named (ready): two groups touching two rows in opposite orders never deadlock",
  async (t) => {
    const { TransactionGroup } = await import('../src/group.js');
    const db = createDb(tdb.url, { max: 4 });
    t.teardown(() => db.destroy());
    await sql`create table if not exists ordered_rows (id int primary key, n int not null default 0)`.execute(db);
    await sql`insert into ordered_rows (id) values (1), (2) on conflict do nothing`.execute(db);
    let readies = 0;
    const groups = [1, 2].map(
      () =>
        new TransactionGroup(
          db,
          {
            open: () => new Set<number>(),
            // Every group locks the rows its items named in one statement, in id order.
            ready: async (trx, ids) => {
              readies++;
              await sql`select id from ordered_rows where id = any(${[...ids]}::int[]) order by id for update`.execute(
                trx,
              );
            },
            close: async () => undefined,
          },
          32,
          20,
        ),
    );
    // Each group: an item on row a, then one on row b, a pause between; the other group the other way round.
    const touch = (g: InstanceType<typeof TransactionGroup<Set<number>>>, id: number, pause: number) =>
      g.run(
        async (trx) => {
          await new Promise((r) => setTimeout(r, pause));
          await sql`update ordered_rows set n = n + 1 where id = ${id}`.execute(trx);
        },
        (ids) => ids.add(id),
      );
    for (let round = 0; round < 3; round++)
      await Promise.all([
        touch(groups[0]!, 1, 0),
        touch(groups[0]!, 2, 100),
        touch(groups[1]!, 2, 0),
        touch(groups[1]!, 1, 100),
      ]);
    t.equal(readies, 6, 'each group locked once a round');
    t.same(
      groups.map((g) => g.stats),
      [
        { groups: 3, transactions: 6, redone: 0 },
        { groups: 3, transactions: 6, redone: 0 },
      ],
      'no group failed (a deadlock would have sent it one item at a time)',
    );
    const { rows } = await sql<{ n: number }>`select sum(n)::int as n from ordered_rows`.execute(db);
    t.equal(rows[0]!.n, 12, 'each item once');
  },
);
