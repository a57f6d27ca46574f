import t from 'tap';
import { EXCHANGES, Ping } from '@billing/contracts';
import { startTcpProxy, viaProxy, waitFor } from '@billing/testing';
import { sql } from 'kysely';
import { enqueue, insertWithMessage, OutboxRelay, outboxBacklog } from '../src/outbox.js';
import { declareInternal } from '../src/topology.js';
import { quietLogger, setup, tapExchange } from './helpers.js';

const env = await setup();
t.teardown(() => env.close());

const relayFor = (url: string, pollMs = 300) =>
  new OutboxRelay({
    db: env.tdb.db,
    databaseUrl: env.tdb.url,
    broker: env.connect(url),
    logger: quietLogger(),
    setup: declareInternal,
    pollMs,
    batchSize: 50,
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
