import t from 'tap';
import { createDb } from '@billing/db';
import { EXCHANGES, Ping } from '@billing/contracts';
import { startTcpProxy, viaProxy, waitFor } from '@billing/testing';
import { sql } from 'kysely';
import { enqueue, insertWithMessage, OutboxRelay, outboxBacklog } from '../src/outbox.js';
import { declareInternal } from '../src/topology.js';
import { quietLogger, setup, tapExchange } from './helpers.js';

const env = await setup();
t.teardown(() => env.close());

const relayFor = (url: string, pollMs = 300, orphanAfterMs?: number) =>
  new OutboxRelay({
    db: env.tdb.db,
    databaseUrl: env.tdb.url,
    broker: env.connect(url),
    logger: quietLogger(),
    setup: declareInternal,
    pollMs,
    batchSize: 50,
    ...(orphanAfterMs === undefined ? {} : { orphanAfterMs }),
  });

async function commitPings(seqs: number[]): Promise<string[]> {
  return env.tdb.db.transaction().execute(async (trx) => {
    const ids: string[] = [];
    for (const seq of seqs) ids.push((await enqueue(trx, Ping, { seq })).id);
    return ids;
  });
}

t.test(
  'rows committed while RabbitMQ is unreachable are published once it returns; rolled-back rows never are',
  async (t) => {
    const target = new URL(env.vhost.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    t.teardown(() => proxy.close());
    const tap = await tapExchange(env.vhost.url, EXCHANGES.internal, 'diagnostics.#');
    t.teardown(() => tap.close());
    const relay = relayFor(viaProxy(env.vhost.url, proxy));
    await relay.start();

    const warm = await commitPings([1]);
    await waitFor(() => tap.ids.includes(warm[0]!), { what: 'the relay publishing' });

    proxy.cut();
    const whileDown = await commitPings([2, 3, 4]);
    await t.rejects(
      env.tdb.db.transaction().execute(async (trx) => {
        await enqueue(trx, Ping, { seq: 99 });
        throw new Error('roll back');
      }),
    );
    await new Promise((r) => setTimeout(r, 700));
    t.equal(whileDown.filter((id) => tap.ids.includes(id)).length, 0, 'nothing reaches the broker while it is away');
    t.equal(await outboxBacklog(env.tdb.db), 3, 'three rows wait in the outbox');

    proxy.restore();
    await waitFor(() => whileDown.every((id) => tap.ids.includes(id)), {
      what: 'the backlog published',
      timeoutMs: 20_000,
    });
    await waitFor(async () => (await outboxBacklog(env.tdb.db)) === 0, { what: 'the rows marked published' });
    const all = await env.tdb.db.selectFrom('outbox').select(['envelope']).execute();
    t.equal(all.length, 4, 'the rolled-back row was never written');
    t.notOk(all.some((r) => (r.envelope as { data: { seq: number } }).data.seq === 99));
    await relay.stop();
  },
);

t.test('two relays publish each row once', async (t) => {
  const tap = await tapExchange(env.vhost.url, EXCHANGES.internal, 'diagnostics.#');
  t.teardown(() => tap.close());
  const a = relayFor(env.vhost.url, 50);
  const b = relayFor(env.vhost.url, 50);
  await Promise.all([a.start(), b.start()]);
  const ids: string[] = [];
  for (let batch = 0; batch < 20; batch++)
    ids.push(...(await commitPings(Array.from({ length: 25 }, (_, i) => 1000 + batch * 25 + i))));
  await waitFor(() => ids.every((id) => tap.ids.includes(id)), { what: '500 messages', timeoutMs: 30_000 });
  // Quiet once every row is marked published: no relay publishes a marked row again.
  await waitFor(async () => (await outboxBacklog(env.tdb.db)) === 0, { what: 'every row marked published' });
  const counts = new Map<string, number>();
  for (const id of tap.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  t.equal(ids.filter((id) => counts.get(id) === 1).length, 500, 'each of the 500 rows published exactly once');
  t.equal(await outboxBacklog(env.tdb.db), 0);
  await Promise.all([a.stop(), b.stop()]);
});

t.test('a row and its message in one statement: both or neither, and the relay is woken', async (t) => {
  const tap = await tapExchange(env.vhost.url, EXCHANGES.internal, 'diagnostics.#');
  t.teardown(() => tap.close());
  // A slow poll: only the NOTIFY sent with the statement can wake the relay in time.
  const relay = relayFor(env.vhost.url, 60_000);
  await relay.start();
  t.teardown(() => relay.stop());
  const insert = (rowId: string, providerEventId: string) =>
    insertWithMessage(
      env.tdb.db,
      (db) =>
        db
          .insertInto('provider_events')
          .values({
            id: rowId,
            provider: 'paypal',
            provider_event_id: providerEventId,
            event_type: 'TEST.EVENT',
            resource_type: null,
            resource_id: null,
            payload: '{"id":"x"}',
          })
          .onConflict((oc) => oc.columns(['provider', 'provider_event_id']).doNothing())
          .returning('id'),
      Ping,
      (id) => {
        named.push(id);
        return { seq: 4242 };
      },
      rowId,
    );
  const named: string[] = [];
  const first = crypto.randomUUID();
  t.equal(await insert(first, 'WH-ONE-STATEMENT'), first, 'the row written, its id returned');
  t.equal(await insert(crypto.randomUUID(), 'WH-ONE-STATEMENT'), undefined, 'a repeat writes nothing');
  const queued = await env.tdb.db
    .selectFrom('outbox')
    .selectAll()
    .where(sql<boolean>`envelope->'data'->>'seq' = '4242'`)
    .execute();
  t.equal(queued.length, 1, 'one message queued, none for the repeat');
  t.equal(named[0], first, 'the message is made for the row written');
  await waitFor(async () => tap.ids.includes((queued[0]!.envelope as { id: string }).id), {
    what: 'the message published by the relay, woken by the NOTIFY',
    timeoutMs: 5_000,
  });
  await t.rejects(
    insertWithMessage(
      env.tdb.db,
      (db) =>
        db
          .insertInto('provider_events')
          .values({
            id: crypto.randomUUID(),
            provider: 'paypal',
            provider_event_id: 'WH-BAD',
            event_type: 'TEST.EVENT',
            resource_type: null,
            resource_id: null,
            payload: 'not json',
          })
          .returning('id'),
      Ping,
      () => ({ seq: 4243 }),
      crypto.randomUUID(),
    ),
    'a failing insert fails the statement',
  );
  t.equal(
    (
      await env.tdb.db
        .selectFrom('outbox')
        .selectAll()
        .where(sql<boolean>`envelope->'data'->>'seq' = '4243'`)
        .execute()
    ).length,
    0,
    'and queues nothing',
  );
});

t.test(
  'a row is published by the process that committed it, woken in-process at commit: no NOTIFY to every relay (docs/messages.md)',
  async (t) => {
    const pg = (await import('pg')).default;
    // Anyone LISTENing on the relay's old channel: every commit used to wake every relay of every app.
    const listener = new pg.Client({ connectionString: env.tdb.url });
    await listener.connect();
    let notifications = 0;
    listener.on('notification', () => notifications++);
    await listener.query('listen billing_outbox');
    t.teardown(() => listener.end());
    const woken: { relay?: OutboxRelay } = {};
    const owner = `outbox-test.${crypto.randomUUID()}`;
    const db = createDb(env.tdb.url, { max: 3, onOutboxCommitted: () => woken.relay?.wake(), outboxOwner: owner });
    t.teardown(() => db.destroy());
    // The poll is a minute: only the in-process wake-up can publish within the test's wait.
    const relay = new OutboxRelay({
      db,
      databaseUrl: env.tdb.url,
      broker: env.connect(),
      logger: quietLogger(),
      setup: declareInternal,
      pollMs: 60_000,
      owner,
    });
    woken.relay = relay;
    await relay.start();
    await new Promise((r) => setTimeout(r, 200)); // the start's first pass is over
    const tap = await tapExchange(env.vhost.url, EXCHANGES.internal, 'diagnostics.#');
    t.teardown(() => tap.close());
    const inTrx = await db.transaction().execute(async (trx) => (await enqueue(trx, Ping, { seq: 3001 })).id);
    await waitFor(() => tap.ids.includes(inTrx), { what: 'the transaction’s message published', timeoutMs: 3_000 });
    const single = await insertWithMessage(
      db,
      (d) =>
        d
          .insertInto('audit_log')
          .values({ id: crypto.randomUUID(), actor: 'test', action: 'ping', target: '3002', reason: 'single' })
          .returning('id'),
      Ping,
      () => ({ seq: 3002 }),
      'x',
    );
    t.ok(single);
    await waitFor(async () => (await outboxBacklog(env.tdb.db)) === 0, {
      what: 'the single statement’s message published',
      timeoutMs: 3_000,
    });
    // A row built in SQL, as the receipts' are: tagged by the column's default, published at once too.
    const built = crypto.randomUUID();
    await db.transaction().execute(async (trx) => {
      await sql`insert into outbox (id, exchange, routing_key, type, envelope, headers)
        select gen_random_uuid(), ${EXCHANGES.internal}, 'diagnostics.ping', 'diagnostics.ping',
          jsonb_build_object('id', ${built}::text, 'type', 'diagnostics.ping', 'version', 1,
            'occurredAt', now(), 'correlationId', ${built}::text, 'data', jsonb_build_object('seq', 3004)), '{}'`.execute(
        trx,
      );
    });
    await waitFor(() => tap.ids.includes(built), { what: 'the SQL-built row published', timeoutMs: 3_000 });
    const owners = await env.tdb.db
      .selectFrom('outbox')
      .select('owner')
      .distinct()
      .where(sql<boolean>`(envelope->'data'->>'seq')::int between 3001 and 3004`)
      .execute();
    t.same(
      owners.map((r) => r.owner),
      [owner],
      'every row the pool wrote names its relay',
    );
    // A rolled-back transaction wakes nobody needlessly, and publishes nothing.
    await t.rejects(
      db.transaction().execute(async (trx) => {
        await enqueue(trx, Ping, { seq: 3003 });
        throw new Error('roll back');
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
    t.equal(notifications, 0, 'no NOTIFY sent for any commit');
    await relay.stop();
  },
);

t.test('a row committed by a process that died before publishing is published by the slow poll', async (t) => {
  const relay = relayFor(env.vhost.url, 300);
  await relay.start();
  const tap = await tapExchange(env.vhost.url, EXCHANGES.internal, 'diagnostics.#');
  t.teardown(() => tap.close());
  // Written by a pool nobody's relay is woken by: as a crash between commit and publish leaves it.
  const [id] = await commitPings([3010]);
  await waitFor(() => tap.ids.includes(id!), { what: 'published by the poll', timeoutMs: 5_000 });
  await relay.stop();
});

t.test(
  'a live relay’s rows are left to it; a dead owner’s rows are claimed by another relay once they are old (docs/messages.md)',
  async (t) => {
    const tap = await tapExchange(env.vhost.url, EXCHANGES.internal, 'diagnostics.#');
    t.teardown(() => tap.close());
    // A pool that tags its rows for a relay that never runs: the process died after its commit.
    const ghost = createDb(env.tdb.url, { max: 2, outboxOwner: `ghost.${crypto.randomUUID()}` });
    t.teardown(() => ghost.destroy());
    const other = relayFor(env.vhost.url, 100, 1_500);
    await other.start();
    t.teardown(() => other.stop());
    const committed = Date.now();
    const ids = await ghost.transaction().execute(async (trx) => {
      const out: string[] = [];
      for (const seq of [5001, 5002, 5003]) out.push((await enqueue(trx, Ping, { seq })).id);
      return out;
    });
    await new Promise((r) => setTimeout(r, 800));
    t.equal(ids.filter((id) => tap.ids.includes(id)).length, 0, 'not claimed while its owner may still publish it');
    await waitFor(() => ids.every((id) => tap.ids.includes(id)), { what: 'claimed once old', timeoutMs: 5_000 });
    t.ok(Date.now() - committed >= 1_400, 'claimed only after orphanAfterMs');
    await waitFor(async () => (await outboxBacklog(env.tdb.db)) === 0, { what: 'marked published' });
    t.same(
      ids.map((id) => tap.ids.filter((x) => x === id).length),
      [1, 1, 1],
      'each published once',
    );
  },
);
