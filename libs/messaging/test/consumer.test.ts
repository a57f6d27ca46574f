import t, { type Test as TapTest } from 'tap';
import { createDb, isTransientConflict, type Database } from '@billing/db';
import { sql, type Transaction } from 'kysely';
import amqplib from 'amqplib';
import { EXCHANGES, Ping } from '@billing/contracts';
import { waitFor, startTcpProxy, viaProxy } from '@billing/testing';
import { Publisher } from '../src/publisher.js';
import { declareInternal } from '../src/topology.js';
import { makeEnvelope } from '../src/envelope.js';
import { discardDeadLetter, replayDeadLetter } from '../src/dead-letters.js';
import { createMetrics } from '@billing/service-kit';
import { auditCount, consumed, pingConsumer, quietLogger, setup } from './helpers.js';

const env = await setup();
t.teardown(() => env.close());

t.test('a message published and confirmed is consumed', async (t) => {
  const broker = env.connect();
  const consumer = pingConsumer(env, broker, { queue: 'test.confirms' });
  await consumer.start();
  const publisher = new Publisher(broker, declareInternal);
  const sent = await publisher.publish(Ping, { seq: 1 });
  t.match(sent, { type: 'diagnostics.ping', version: 1, data: { seq: 1 } });
  await waitFor(async () => (await auditCount(env, 1)) === 1, { what: 'ping 1 processed' });
  const row = await env.tdb.db
    .selectFrom('processed_messages')
    .selectAll()
    .where('message_id', '=', sent.id)
    .executeTakeFirst();
  t.ok(row, 'the message id is recorded as processed');
  await consumer.stop();
});

t.test(
  'a failing message is retried with growing delays, then dead-lettered, while others flow; a replay is processed',
  async (t) => {
    const broker = env.connect();
    const attemptsLog = new Map<number, number[]>();
    const failSeqs = new Set([100]);
    const consumer = pingConsumer(env, broker, {
      queue: 'test.retries',
      delays: [150, 300, 600],
      maxAttempts: 4,
      failSeqs,
      attemptsLog,
    });
    await consumer.start();
    const publisher = new Publisher(broker, declareInternal);
    const bad = await publisher.publish(Ping, { seq: 100 });
    for (let i = 101; i <= 105; i++) await publisher.publish(Ping, { seq: i });
    await waitFor(async () => (await auditCount(env)) >= 5, { what: 'the five good messages committed' });
    t.equal(await auditCount(env, 101), 1, 'good messages flow while the bad one retries');
    const dead = await waitFor(
      () => env.tdb.db.selectFrom('dead_letters').selectAll().where('message_id', '=', bad.id).executeTakeFirst(),
      { what: 'the dead letter', timeoutMs: 20_000 },
    );
    t.equal(dead.attempts, 4, 'dead-lettered after the bound');
    t.match(dead.error, /ping 100 refused/);
    t.equal(dead.queue, 'test.retries');
    const times = attemptsLog.get(100) ?? [];
    t.equal(times.length, 4, 'handled exactly four times');
    const gaps = times.slice(1).map((tm, i) => tm - (times[i] as number));
    // Each retry waited at least its own delay (150, 300, 600 ms, less timer slack). The observed gaps
    // are not compared with one another: on a loaded machine the first can run long (335, 328, 610 ms
    // in one CI run), which says nothing about the schedule.
    t.ok(
      gaps[0]! >= 120 && gaps[1]! >= 250 && gaps[2]! >= 500,
      `each retry after its own delay: ${gaps.join(', ')} ms`,
    );
    t.equal(await auditCount(env, 100), 0, 'the failed attempts changed nothing');

    failSeqs.delete(100);
    const { OutboxRelay } = await import('../src/outbox.js');
    const relay = new OutboxRelay({
      db: env.tdb.db,
      databaseUrl: env.tdb.url,
      broker,
      logger: (await import('./helpers.js')).quietLogger(),
      setup: declareInternal,
      pollMs: 200,
    });
    await relay.start();
    await replayDeadLetter(env.tdb.db, dead.id);
    await waitFor(async () => (await auditCount(env, 100)) === 1, { what: 'the replayed message processed' });
    const after = await env.tdb.db
      .selectFrom('dead_letters')
      .selectAll()
      .where('id', '=', dead.id)
      .executeTakeFirstOrThrow();
    t.ok(after.replayed_at, 'the dead letter stays, marked replayed');
    t.equal(after.replay_count, 1);
    await relay.stop();
    await consumer.stop();
  },
);

t.test('a malformed message is dead-lettered at once, not retried', async (t) => {
  const broker = env.connect();
  const consumer = pingConsumer(env, broker, { queue: 'test.malformed' });
  await consumer.start();
  const publisher = new Publisher(broker, declareInternal);
  await publisher.channel.publish(EXCHANGES.internal, 'diagnostics.ping', Buffer.from('{"id":"not-a-uuid"'), {
    persistent: true,
    messageId: 'junk-1',
    type: 'diagnostics.ping',
  });
  const bad = makeEnvelope(Ping, { seq: 7 });
  await publisher.publishEnvelope(EXCHANGES.internal, 'diagnostics.ping', { ...bad, data: { seq: 'seven' } });
  const rows = await waitFor(
    async () => {
      const r = await env.tdb.db.selectFrom('dead_letters').selectAll().where('queue', '=', 'test.malformed').execute();
      return r.length === 2 ? r : null;
    },
    { what: 'two dead letters' },
  );
  t.ok(rows.some((r) => /malformed JSON/.test(r.error)));
  t.ok(rows.some((r) => /invalid diagnostics.ping data/.test(r.error)));
  t.ok(
    rows.every((r) => r.attempts === 0),
    'never handed to the handler',
  );

  // Replaying the still-invalid one: it dies again, and its own row says so (no second, identical row).
  const { OutboxRelay } = await import('../src/outbox.js');
  const relay = new OutboxRelay({
    db: env.tdb.db,
    databaseUrl: env.tdb.url,
    broker,
    logger: quietLogger(),
    setup: declareInternal,
    pollMs: 200,
  });
  await relay.start();
  const invalid = rows.find((r) => /invalid diagnostics.ping data/.test(r.error))!;
  await replayDeadLetter(env.tdb.db, invalid.id);
  const again = await waitFor(
    async () => {
      const r = await env.tdb.db.selectFrom('dead_letters').selectAll().where('id', '=', invalid.id).executeTakeFirst();
      return r?.died_again_at ? r : null;
    },
    { what: 'the replay dead-lettered again' },
  );
  t.equal(again.replay_count, 1);
  const all = await env.tdb.db.selectFrom('dead_letters').selectAll().where('queue', '=', 'test.malformed').execute();
  t.equal(all.length, 2, 'still two dead letters: the replay updated its own row');

  // Discarded: kept, marked, and no longer replayable.
  t.equal(await discardDeadLetter(env.tdb.db, invalid.id, 'op-1', 'data cannot be fixed'), true);
  t.equal(await discardDeadLetter(env.tdb.db, invalid.id, 'op-2', 'again'), false, 'a second discard changes nothing');
  t.match(await env.tdb.db.selectFrom('dead_letters').selectAll().where('id', '=', invalid.id).executeTakeFirst(), {
    discarded_by: 'op-1',
    discard_reason: 'data cannot be fixed',
  });
  await t.rejects(replayDeadLetter(env.tdb.db, invalid.id), /discarded/);
  await t.rejects(discardDeadLetter(env.tdb.db, '00000000-0000-4000-8000-000000000000', 'op', 'x'), /no dead letter/);
  await relay.stop();
  await consumer.stop();
});

t.test('a message delivered twice (same id) changes state once', async (t) => {
  const broker = env.connect();
  const metrics = createMetrics('test');
  const consumer = pingConsumer(env, broker, { queue: 'test.dupes', metrics });
  await consumer.start();
  const publisher = new Publisher(broker, declareInternal);
  const envl = makeEnvelope(Ping, { seq: 200 });
  await Promise.all([1, 2, 3].map(() => publisher.publishEnvelope(EXCHANGES.internal, 'diagnostics.ping', envl)));
  await waitFor(async () => (await consumed(metrics, 'processed')) + (await consumed(metrics, 'duplicate')) === 3, {
    what: 'all three copies settled',
  });
  t.equal(await auditCount(env, 200), 1, 'processed once');
  t.equal(await consumed(metrics, 'duplicate'), 2, 'the two copies were recognised and skipped');
  await consumer.stop();
});

t.test('a consumer killed between its commit and its ack: the redelivered message is skipped', async (t) => {
  const first = env.connect();
  let killed = false;
  const doomed = pingConsumer(env, first, {
    queue: 'test.kill',
    onCommitted: async () => {
      if (killed) return;
      killed = true;
      // The process "dies" here: the connection goes before the ack is sent.
      await first.manager.close();
      throw new Error('killed before ack');
    },
  });
  await doomed.start();
  const publisher = new Publisher(env.connect(), declareInternal);
  const sent = await publisher.publish(Ping, { seq: 300 });
  await waitFor(() => killed, { what: 'the kill' });
  const second = env.connect();
  const metrics = createMetrics('test');
  const survivor = pingConsumer(env, second, { queue: 'test.kill', metrics });
  await survivor.start();
  await waitFor(async () => (await consumed(metrics, 'duplicate')) === 1, {
    what: 'the redelivered message recognised as processed',
  });
  t.equal(await auditCount(env, 300), 1, 'the message committed once and was not processed again');
  const processed = await env.tdb.db
    .selectFrom('processed_messages')
    .selectAll()
    .where('message_id', '=', sent.id)
    .execute();
  t.equal(processed.length, 1);
  await survivor.stop();
});

t.test(
  'an outage waits without using attempts or the delivery limit: nothing ends parked (docs/messages.md)',
  async (t) => {
    const broker = env.connect();
    let outage = 6;
    const handlers = {
      'diagnostics.ping': async ({ trx, envelope }: { trx: any; envelope: { id: string; data: { seq: number } } }) => {
        if (outage-- > 0)
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        await trx
          .insertInto('audit_log')
          .values({
            id: crypto.randomUUID(),
            actor: 'test',
            action: 'ping',
            target: String(envelope.data.seq),
            reason: envelope.id,
          })
          .execute();
      },
    };
    const { Consumer } = await import('../src/consumer.js');
    const consumer = new Consumer({
      name: 'outage-consumer',
      broker,
      db: env.tdb.db,
      logger: quietLogger(),
      queue: {
        queue: 'test.outage',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 2,
      },
      contracts: [Ping] as const,
      handlers,
      maxAttempts: 2,
      prefetch: 10,
      setup: declareInternal,
    });
    await consumer.start();
    const publisher = new Publisher(broker, declareInternal);
    const sent = await publisher.publish(Ping, { seq: 700 });
    await waitFor(async () => (await auditCount(env, 700)) === 1, {
      what: 'the message processed once the outage ends',
      timeoutMs: 20_000,
    });
    t.equal(outage, -1, 'it waited through six failed tries');
    const dead = await env.tdb.db.selectFrom('dead_letters').selectAll().where('message_id', '=', sent.id).execute();
    t.equal(dead.length, 0, "an outage is not the message's fault: no dead letter");
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createChannel();
    const parked = await ch.checkQueue('test.outage.parked');
    t.equal(parked.messageCount, 0, 'nothing parked');
    await conn.close();
    await consumer.stop();
  },
);

t.test('a message the broker parks reaches dead_letters, where an operator sees it (docs/messages.md)', async (t) => {
  const broker = env.connect();
  const consumer = pingConsumer(env, broker, { queue: 'test.parking' });
  await consumer.start();
  const envelope = makeEnvelope(Ping, { seq: 800 });
  const conn = await amqplib.connect(env.vhost.url);
  const ch = await conn.createConfirmChannel();
  // As the quorum queue does past x-delivery-limit: dead-lettered to the parking queue.
  ch.sendToQueue('test.parking.parked', Buffer.from(JSON.stringify(envelope)), {
    messageId: envelope.id,
    type: envelope.type,
    persistent: true,
    headers: { 'x-delivery-count': 20 },
  });
  await ch.waitForConfirms();
  const dead = await waitFor(
    () => env.tdb.db.selectFrom('dead_letters').selectAll().where('message_id', '=', envelope.id).executeTakeFirst(),
    { what: 'the parked message in dead_letters' },
  );
  t.equal(dead.queue, 'test.parking', 'named by its work queue, so a replay goes back there');
  t.match(dead.error, /delivery limit/);
  t.equal(dead.attempts, 20);
  await waitFor(async () => (await ch.checkQueue('test.parking.parked')).messageCount === 0, {
    what: 'the parking queue empty',
  });
  await conn.close();
  await consumer.stop();
});

t.test(
  'a step handler calls out with no transaction held, then commits its outcome with the message; a repeat is skipped',
  async (t) => {
    const broker = env.connect();
    const seen: number[] = [];
    const { Consumer } = await import('../src/consumer.js');
    const consumer = new Consumer({
      name: 'steps-consumer',
      broker,
      db: env.tdb.db,
      logger: quietLogger(),
      queue: {
        queue: 'test.steps',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 3,
      prefetch: 1,
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async ({ envelope, commit }) => {
          seen.push(envelope.data.seq); // the call to the outside world would go here
          if (envelope.data.seq === 901) return; // nothing to record: the message is still marked processed
          const fresh = await commit(async (trx) => {
            await trx
              .insertInto('audit_log')
              .values({
                id: crypto.randomUUID(),
                actor: 'test',
                action: 'ping',
                target: String(envelope.data.seq),
                reason: envelope.id,
              })
              .execute();
          });
          t.ok(fresh, 'recorded once');
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    const first = makeEnvelope(Ping, { seq: 900 });
    for (const e of [first, first, makeEnvelope(Ping, { seq: 901 })])
      ch.sendToQueue('test.steps', Buffer.from(JSON.stringify(e)), { messageId: e.id, type: e.type, persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    await waitFor(
      async () =>
        Number(
          (
            await env.tdb.db
              .selectFrom('processed_messages')
              .select((eb) => eb.fn.countAll<string>().as('n'))
              .where('consumer', '=', 'steps-consumer')
              .executeTakeFirstOrThrow()
          ).n,
        ) === 2,
      { what: 'both messages processed' },
    );
    t.equal(await auditCount(env, 900), 1, 'the outcome recorded once');
    t.same(seen, [900, 901], 'the repeat, after the first committed, skipped before its handler ran');
    await consumer.stop();
  },
);

t.test(
  "a handler still running when its channel closed settles nothing on the new channel: another message's ack is never stolen",
  async (t) => {
    // Delivery tags restart at 1 on every channel. A late ack from a handler whose channel
    // closed (the connection dropped, or the broker's consumer timeout) must not land on the
    // channel that replaced it, where its tag names another message: that message would count as
    // settled, and vanish if its handler did not finish.
    const { Consumer } = await import('../src/consumer.js');
    const base = new URL(env.vhost.url);
    const proxy = await startTcpProxy({ host: base.hostname, port: Number(base.port || 5672) });
    t.teardown(() => proxy.close());
    type Gate = { started: number; release: (ok: boolean) => void; wait: Promise<boolean> };
    const runs = new Map<number, Gate[]>();
    const gated = new Set([2, 3]);
    const handlerFor = (gates: boolean) => ({
      'diagnostics.ping': async ({
        envelope,
        commit,
      }: {
        envelope: { id: string; data: { seq: number } };
        commit: (fn: (trx: any) => Promise<void>) => Promise<boolean>;
      }) => {
        const seq = envelope.data.seq;
        if (gates && gated.has(seq)) {
          let release!: (ok: boolean) => void;
          const wait = new Promise<boolean>((r) => (release = r));
          runs.set(seq, [...(runs.get(seq) ?? []), { started: Date.now(), release, wait }]);
          if (!(await wait)) throw new Error(`run of ${seq} abandoned by the test`);
        }
        await commit(async (trx) => {
          await trx
            .insertInto('audit_log')
            .values({
              id: crypto.randomUUID(),
              actor: 'test',
              action: 'ping',
              target: String(seq),
              reason: envelope.id,
            })
            .execute();
        });
      },
    });
    const make = (broker: ReturnType<typeof env.connect>, gates: boolean) =>
      new Consumer({
        name: 'stolen-ack-consumer',
        broker,
        db: env.tdb.db,
        logger: quietLogger(),
        queue: {
          queue: 'test.stolen-ack',
          bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
          retryDelaysMs: [100],
          deliveryLimit: 20,
        },
        contracts: [Ping] as const,
        maxAttempts: 3,
        prefetch: 10,
        setup: declareInternal,
        steps: handlerFor(gates),
      });
    const first = make(env.connect(viaProxy(env.vhost.url, proxy)), true);
    await first.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    const send = async (seq: number) => {
      const e = makeEnvelope(Ping, { seq });
      ch.sendToQueue('test.stolen-ack', Buffer.from(JSON.stringify(e)), {
        messageId: e.id,
        type: e.type,
        persistent: true,
      });
      await ch.waitForConfirms();
    };
    await send(1); // delivery tag 1 on the first channel, settled at once
    await waitFor(async () => (await auditCount(env, 1)) === 1, { what: 'the first message processed' });
    await send(2); // delivery tag 2 on the first channel: its handler waits
    await waitFor(async () => runs.get(2)?.length === 1, { what: 'message 2 in its handler' });
    proxy.cut();
    proxy.restore();
    await waitFor(async () => runs.get(2)?.length === 2, {
      what: 'message 2 delivered again on the new channel (delivery tag 1 there)',
      timeoutMs: 15_000,
    });
    await send(3); // delivery tag 2 on the new channel: its handler waits
    await waitFor(async () => runs.get(3)?.length === 1, { what: 'message 3 in its handler' });
    runs.get(2)![0]!.release(true); // the first run of message 2 ends and settles its delivery (tag 2, old channel)
    await waitFor(async () => (await auditCount(env, 2)) === 1, { what: 'message 2 recorded' });
    await new Promise((r) => setTimeout(r, 300)); // its ack, if sent to the new channel, reaches the broker
    // The worker stops before message 3's handler finished: message 3 must be handed back.
    await first.stop(100);
    for (const gates of runs.values()) for (const g of gates) g.release(false);
    const second = make(env.connect(), false);
    await second.start();
    await waitFor(async () => (await auditCount(env, 3)) === 1, {
      what: 'message 3 handed back and processed by the next worker',
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await ch.checkQueue('test.stolen-ack')).messageCount === 0, {
      what: 'the queue empty',
    });
    t.equal(await auditCount(env, 2), 1, 'message 2 processed once');
    t.equal(await auditCount(env, 3), 1, 'message 3 processed once');
    await conn.close();
    await second.stop();
  },
);

t.test(
  'under load a consumer waits for pool connections: no message goes round a retry queue, none is handled twice (docs/messages.md)',
  async (t) => {
    for (const connections of [2, undefined])
      await t.test(`connections: ${connections ?? 'not given'}`, (t) => underLoad(t, connections));
  },
);

async function underLoad(t: TapTest, connections: number | undefined) {
  {
    // A pool of 2 connections and 60 messages whose commit holds its connection 200 ms: with 30
    // messages taken at once, the last would wait 3 s or more, longer than the pool's 3 s. Waiting
    // for a connection is load, not an outage: the messages wait in the broker.
    const { sql } = await import('kysely');
    const { Consumer } = await import('../src/consumer.js');
    const small = createDb(env.tdb.url, { max: 2 });
    t.teardown(() => small.destroy());
    const metrics = createMetrics('test');
    const calls = new Map<number, number>();
    const consumer = new Consumer({
      name: `pool-consumer-${connections}`,
      broker: env.connect(),
      db: small,
      ...(connections ? { connections } : {}),
      logger: quietLogger(),
      metrics,
      queue: {
        queue: `test.pool.${connections}`,
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 3,
      prefetch: 30,
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async ({ envelope, commit }) => {
          const seq = envelope.data.seq;
          calls.set(seq, (calls.get(seq) ?? 0) + 1); // the call to PayPal
          await new Promise((r) => setTimeout(r, 20));
          await commit(async (trx) => {
            await sql`select pg_sleep(0.2)`.execute(trx);
            await trx
              .insertInto('audit_log')
              .values({
                id: crypto.randomUUID(),
                actor: 'test',
                action: 'ping',
                target: String(seq),
                reason: envelope.id,
              })
              .execute();
          });
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    for (let seq = 2000; seq < 2060; seq++) {
      const e = makeEnvelope(Ping, { seq });
      ch.sendToQueue(`test.pool.${connections}`, Buffer.from(JSON.stringify(e)), {
        messageId: e.id,
        type: e.type,
        persistent: true,
      });
    }
    await ch.waitForConfirms();
    await waitFor(async () => (await consumed(metrics, 'processed')) === 60, {
      what: 'all 60 processed',
      timeoutMs: 60_000,
    });
    t.equal(await consumed(metrics, 'requeued'), 0, 'no message sent round a retry queue');
    t.equal(await consumed(metrics, 'retried'), 0, 'no attempt used');
    t.equal([...calls.values()].filter((n) => n > 1).length, 0, 'the outside world was called once per message');
    t.equal(calls.size, 60);
    await conn.close();
    await consumer.stop();
  }
}

t.test("an outage in a row doubles its wait, up to 30 s, on the queue's own retry queues", async (t) => {
  const { outageDelay } = await import('../src/consumer.js');
  const payment = [1_000, 5_000, 30_000, 120_000];
  t.same(
    [0, 1, 2, 3, 4, 5, 6, 9].map((n) => outageDelay(payment, n)),
    [1_000, 1_000, 1_000, 5_000, 5_000, 30_000, 30_000, 30_000],
  );
  t.same(
    [0, 1, 2, 3].map((n) => outageDelay([100], n)),
    [100, 100, 100, 100],
  );
});

t.test(
  'windows: messages taken at once are applied in one transaction, repeats skipped; a bad one sends the window back one at a time; work after the commit is retried alone',
  async (t) => {
    const { Consumer } = await import('../src/consumer.js');
    const metrics = createMetrics('test');
    const closes: number[] = [];
    const afterRuns = new Map<number, number>();
    let failAfter = true;
    const write = async (trx: any, seq: number, id: string) =>
      trx
        .insertInto('audit_log')
        .values({ id: crypto.randomUUID(), actor: 'test', action: 'ping', target: String(seq), reason: id })
        .execute();
    const consumer = new Consumer({
      name: 'window-consumer',
      broker: env.connect(),
      db: env.tdb.db,
      logger: quietLogger(),
      metrics,
      queue: {
        queue: 'test.windows',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 2,
      prefetch: 40,
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async () => {
          throw new Error('the step is not used for a type applied in windows');
        },
      },
      windows: {
        open: () => ({ seqs: [] as number[] }),
        close: async (trx, w) => {
          closes.push(w.seqs.length);
          // what the window shares is written once, at its end, in its transaction
          await write(trx, -1, `window of ${w.seqs.length}`);
        },
        apply: {
          'diagnostics.ping': async ({ trx, envelope, window }) => {
            const seq = envelope.data.seq;
            if (envelope.data.fail) throw new Error(`ping ${seq} refused`);
            window.seqs.push(seq);
            // As the payment-worker's are: applied before (its after-commit work failed), it changes nothing.
            const done = await trx
              .selectFrom('audit_log')
              .select('id')
              .where('reason', '=', envelope.id)
              .executeTakeFirst();
            if (!done) await write(trx, seq, envelope.id);
            // Decided at the window's close (docs/messages.md, captures in windows): only 4_605 leaves work after the commit.
            if (seq >= 4_600)
              return {
                afterClose: () =>
                  seq === 4_605
                    ? async () => {
                        afterRuns.set(seq, (afterRuns.get(seq) ?? 0) + 1);
                      }
                    : undefined,
              };
            if (seq === 4_500)
              return async () => {
                afterRuns.set(seq, (afterRuns.get(seq) ?? 0) + 1);
                if (failAfter) {
                  failAfter = false;
                  throw new Error('PayPal away');
                }
              };
          },
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    const send = async (envelopes: ReturnType<typeof makeEnvelope<typeof Ping>>[]) => {
      for (const e of envelopes)
        ch.sendToQueue('test.windows', Buffer.from(JSON.stringify(e)), {
          messageId: e.id,
          type: e.type,
          persistent: true,
        });
      await ch.waitForConfirms();
    };
    // 30 good messages; then one of them again.
    const good = Array.from({ length: 30 }, (_, i) => makeEnvelope(Ping, { seq: 4_000 + i }));
    await send(good);
    await waitFor(async () => (await consumed(metrics, 'processed')) === 30, { what: '30 processed' });
    await send([good[3]!]);
    await waitFor(async () => (await consumed(metrics, 'duplicate')) === 1, { what: 'the repeat settled' });
    for (const e of good) t.equal(await auditCount(env, e.data.seq), 1, `${e.data.seq} applied once`);
    t.ok(consumer.windowStats.applied >= 1, `applied in windows (${closes.join(', ')} messages each)`);
    t.ok(Math.max(...closes) > 1, 'several messages shared a transaction');
    t.equal(await consumed(metrics, 'duplicate'), 1, 'the repeat skipped');

    // A window holding a bad message: redone one at a time; the good ones are applied once.
    const batch2 = [
      ...Array.from({ length: 5 }, (_, i) => makeEnvelope(Ping, { seq: 4_100 + i })),
      makeEnvelope(Ping, { seq: 4_199, fail: true }),
    ];
    const redoneBefore = consumer.windowStats.redone;
    await send(batch2);
    await waitFor(
      async () =>
        (await env.tdb.db.selectFrom('dead_letters').select('id').where('queue', '=', 'test.windows').execute())
          .length === 1,
      { what: 'the bad message dead-lettered after its attempts' },
    );
    for (const e of batch2.slice(0, 5)) t.equal(await auditCount(env, e.data.seq), 1, `${e.data.seq} applied once`);
    t.equal(await auditCount(env, 4_199), 0, 'the bad one changed nothing');
    t.ok(consumer.windowStats.redone > redoneBefore, 'its window was redone one message at a time');

    // Work after the commit that fails: that message alone is retried; it is applied once.
    await send([makeEnvelope(Ping, { seq: 4_500 }), makeEnvelope(Ping, { seq: 4_501 })]);
    await waitFor(async () => afterRuns.get(4_500) === 2, { what: 'the after-commit work retried' });
    await waitFor(
      async () =>
        Number(
          (
            await env.tdb.db
              .selectFrom('processed_messages')
              .select((eb) => eb.fn.countAll<string>().as('n'))
              .where('consumer', '=', 'window-consumer')
              .executeTakeFirstOrThrow()
          ).n,
        ) ===
        30 + 5 + 2,
      { what: 'every good message marked processed' },
    );
    t.equal(await auditCount(env, 4_500), 1, 'its part in the transaction applied once (the repeat found it done)');
    t.equal(await auditCount(env, 4_501), 1);

    // Decided at the close: those with nothing after the commit are marked processed in the window's
    // own transaction (the rows share its xmin), the one with work after it once that work ran.
    const late = Array.from({ length: 8 }, (_, i) => makeEnvelope(Ping, { seq: 4_600 + i }));
    await send(late);
    await waitFor(async () => (await consumed(metrics, 'processed')) >= 30 + 5 + 2 + 8, { what: 'the 8 processed' });
    t.equal(afterRuns.get(4_605), 1, 'the work after the commit ran once');
    const xminOf = async (table: 'audit_log' | 'processed_messages', col: string, ids: string[]) =>
      (
        await sql<{ k: string; x: string }>`select ${sql.ref(col)} as k, xmin::text as x from ${sql.table(table)}
          where ${sql.ref(col)} = any(${ids})`.execute(env.tdb.db)
      ).rows;
    const ids = late.map((e) => e.id);
    const written = new Map((await xminOf('audit_log', 'reason', ids)).map((r) => [r.k, r.x]));
    const marked = new Map((await xminOf('processed_messages', 'message_id', ids)).map((r) => [r.k, r.x]));
    t.equal(marked.size, 8, 'each marked processed');
    t.ok(
      late.filter((e) => e.data.seq !== 4_605).every((e) => marked.get(e.id) === written.get(e.id)),
      'nothing after the commit: marked in the transaction that applied it',
    );
    t.not(marked.get(late[5]!.id), written.get(late[5]!.id), 'work after the commit: marked once it ran');
    await conn.close();
    await consumer.stop();
  },
);

t.test(
  'windows grow with the load: one window transaction at a time, the messages delivered meanwhile form the next',
  async (t) => {
    const { Consumer } = await import('../src/consumer.js');
    const metrics = createMetrics('test');
    const sizes: number[] = [];
    let running = 0;
    let most = 0;
    const consumer = new Consumer({
      name: 'growing-windows',
      broker: env.connect(),
      db: env.tdb.db,
      logger: quietLogger(),
      metrics,
      queue: {
        queue: 'test.growing-windows',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 2,
      prefetch: 40,
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async () => {
          throw new Error('the step is not used for a type applied in windows');
        },
      },
      windows: {
        max: 40,
        open: () => {
          most = Math.max(most, ++running);
          return { n: 0 };
        },
        // A slow transaction: what arrives meanwhile waits for it.
        close: async (_trx, w) => {
          await new Promise((r) => setTimeout(r, 150));
          sizes.push(w.n);
          running--;
        },
        apply: {
          'diagnostics.ping': async ({ window }) => {
            window.n++;
          },
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    const send = async (n: number, from: number) => {
      for (let i = 0; i < n; i++) {
        const e = makeEnvelope(Ping, { seq: from + i });
        ch.sendToQueue('test.growing-windows', Buffer.from(JSON.stringify(e)), {
          messageId: e.id,
          type: e.type,
          persistent: true,
        });
        // Delivered one by one, in separate turns of the consumer's event loop.
        await ch.waitForConfirms();
      }
    };
    await send(1, 9_000);
    await waitFor(async () => running === 1, { what: 'the first window running' });
    await send(25, 9_001);
    await waitFor(async () => (await consumed(metrics, 'processed')) === 26, { what: '26 processed' });
    t.equal(most, 1, 'never two window transactions at once');
    t.equal(sizes[0], 1, 'a lone message waits for no one');
    t.ok(
      sizes.length <= 4 && Math.max(...sizes.slice(1)) >= 10,
      `the rest gathered while it ran (${sizes.join(', ')})`,
    );
    await conn.close();
    await consumer.stop();
  },
);

t.test(
  'windows at once: up to `concurrency` window transactions run side by side, and the prefetch makes room for each',
  async (t) => {
    const { Consumer } = await import('../src/consumer.js');
    const metrics = createMetrics('test');
    const sizes: number[] = [];
    let running = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const consumer = new Consumer({
      name: 'windows-at-once',
      broker: env.connect(),
      db: env.tdb.db,
      logger: quietLogger(),
      metrics,
      queue: {
        queue: 'test.windows-at-once',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 2,
      prefetch: 40,
      // One connection for the step handlers (2 messages) and three windows of 4: 14 taken at most.
      connections: 1,
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async () => {
          throw new Error('the step is not used for a type applied in windows');
        },
      },
      windows: {
        max: 4,
        concurrency: 3,
        open: () => {
          most = Math.max(most, ++running);
          return { n: 0 };
        },
        // Held until the test lets go: the windows running meanwhile are counted.
        close: async (_trx, w) => {
          await gate;
          sizes.push(w.n);
          running--;
        },
        apply: {
          'diagnostics.ping': async ({ window }) => {
            window.n++;
          },
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    for (let i = 0; i < 30; i++) {
      const e = makeEnvelope(Ping, { seq: 9_500 + i });
      ch.sendToQueue('test.windows-at-once', Buffer.from(JSON.stringify(e)), {
        messageId: e.id,
        type: e.type,
        persistent: true,
      });
    }
    await ch.waitForConfirms();
    await waitFor(async () => running === 3, { what: 'three windows running at once' });
    await waitFor(async () => (await ch.checkQueue('test.windows-at-once')).messageCount === 30 - 14, {
      what: '14 taken (2 for the connection, 3 windows of 4), 16 left in the broker',
    });
    t.equal(most, 3, 'three window transactions side by side, no more');
    release();
    await waitFor(async () => (await consumed(metrics, 'processed')) === 30, { what: '30 processed' });
    t.equal(most, 3, 'never more than three at once');
    t.equal(
      sizes.reduce((a, b) => a + b, 0),
      30,
      `each message in one window (${sizes.join(', ')})`,
    );
    t.ok(Math.max(...sizes) <= 4, 'no window over its max');
    await conn.close();
    await consumer.stop();
  },
);

t.test(
  'group commit: step handlers’ commits share transactions; a failing commit fails only its own message',
  async (t) => {
    const { Consumer } = await import('../src/consumer.js');
    const metrics = createMetrics('test');
    // Refused twice: in its group and again alone (or alone, then in a group): its message is retried once.
    let refusals = 2;
    const consumer = new Consumer({
      name: 'group-consumer',
      broker: env.connect(),
      db: env.tdb.db,
      logger: quietLogger(),
      metrics,
      queue: {
        queue: 'test.group',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 3,
      prefetch: 30,
      groupCommits: true,
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async ({ envelope, commit }) => {
          const seq = envelope.data.seq;
          await commit(async (trx) => {
            await trx
              .insertInto('audit_log')
              .values({
                id: crypto.randomUUID(),
                actor: 'test',
                action: 'ping',
                target: String(seq),
                reason: envelope.id,
              })
              .execute();
            if (seq === 5_013 && refusals > 0) {
              refusals--;
              throw new Error('refused');
            }
          });
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    for (let seq = 5_000; seq < 5_030; seq++) {
      const e = makeEnvelope(Ping, { seq });
      ch.sendToQueue('test.group', Buffer.from(JSON.stringify(e)), { messageId: e.id, type: e.type, persistent: true });
    }
    await ch.waitForConfirms();
    await waitFor(async () => (await consumed(metrics, 'processed')) === 30, { what: '30 processed' });
    for (let seq = 5_000; seq < 5_030; seq++) t.equal(await auditCount(env, seq), 1, `${seq} recorded once`);
    t.equal(await consumed(metrics, 'retried'), 1, 'only the refused commit’s message was retried');
    t.equal(refusals, 0);
    await conn.close();
    await consumer.stop();
  },
);

t.test(
  'group commit with a window: commits gathered while a group runs form the next, marked in one INSERT, closed set-based; a repeat is skipped',
  async (t) => {
    const { Consumer } = await import('../src/consumer.js');
    const metrics = createMetrics('test');
    let running = 0;
    let most = 0;
    const sizes: number[] = [];
    const consumer = new Consumer<readonly [typeof Ping], number[]>({
      name: 'gathered-consumer',
      broker: env.connect(),
      db: env.tdb.db,
      logger: quietLogger(),
      metrics,
      queue: {
        queue: 'test.gathered',
        bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
        retryDelaysMs: [100],
        deliveryLimit: 20,
      },
      contracts: [Ping] as const,
      maxAttempts: 3,
      prefetch: 60,
      commitConcurrency: 1,
      groupCommits: {
        open: () => [],
        async close(trx, seqs) {
          running++;
          most = Math.max(most, running);
          sizes.push(seqs.length);
          // The group's work in one statement, as a window's close does it.
          await trx
            .insertInto('audit_log')
            .values(
              seqs.map((seq) => ({ id: crypto.randomUUID(), actor: 'test', action: 'ping', target: String(seq) })),
            )
            .execute();
          await new Promise((r) => setTimeout(r, 20));
          running--;
        },
      },
      setup: declareInternal,
      steps: {
        'diagnostics.ping': async ({ envelope, commit }) => {
          await commit(async (_trx, seqs) => {
            seqs.push(envelope.data.seq);
          });
        },
      },
    });
    await consumer.start();
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    const sent = [];
    for (let seq = 7_000; seq < 7_050; seq++) {
      const e = makeEnvelope(Ping, { seq });
      sent.push(e);
      ch.sendToQueue('test.gathered', Buffer.from(JSON.stringify(e)), {
        messageId: e.id,
        type: e.type,
        persistent: true,
      });
    }
    // One sent again: a repeat, skipped.
    const again = sent[3]!;
    ch.sendToQueue('test.gathered', Buffer.from(JSON.stringify(again)), {
      messageId: again.id,
      type: again.type,
      persistent: true,
    });
    await ch.waitForConfirms();
    await waitFor(async () => (await consumed(metrics, 'processed')) + (await consumed(metrics, 'duplicate')) === 51, {
      what: '51 settled',
    });
    for (let seq = 7_000; seq < 7_050; seq++) t.equal(await auditCount(env, seq), 1, `${seq} recorded once`);
    t.equal(await consumed(metrics, 'duplicate'), 1, 'the repeat skipped');
    t.equal(most, 1, 'never two group transactions at once');
    t.ok(sizes.length < 25 && Math.max(...sizes) >= 5, `the commits gathered into groups (${sizes.join(', ')})`);
    t.equal(consumer.commitStats.redone, 0, 'no group redone');
    await conn.close();
    await consumer.stop();
  },
);

t.test(
  'a deadlock Postgres breaks is run again in place: two messages (alone) or two windows that lock two rows in opposite orders; nothing goes to a retry queue',
  async (t) => {
    const { Consumer } = await import('../src/consumer.js');
    await sql`create table if not exists deadlock_rows (id int primary key, n int not null default 0)`.execute(
      env.tdb.db,
    );
    await sql`insert into deadlock_rows (id) values (1), (2) on conflict do nothing`.execute(env.tdb.db);
    const warnings: string[] = [];
    const logger = quietLogger();
    const warn = logger.warn.bind(logger);
    logger.warn = ((msg: string, ...rest: unknown[]) => {
      warnings.push(msg);
      return warn(msg, ...(rest as []));
    }) as typeof logger.warn;
    let deadlocks = 0;
    // Each transaction's first run locks its first row, waits until the other holds its own, then
    // asks for the other's: a cycle Postgres breaks by ending one of the two.
    let holding = 0;
    let bothHold!: () => void;
    let held = new Promise<void>((r) => (bothHold = r));
    const firstRun = new Set<string>();
    const lockBoth = async (trx: Transaction<Database>, key: string, seq: number) => {
      const [a, b] = seq % 2 ? [1, 2] : [2, 1];
      await sql`update deadlock_rows set n = n + 1 where id = ${a}`.execute(trx);
      if (!firstRun.has(key)) {
        firstRun.add(key);
        if (++holding === 2) bothHold();
        await held;
      }
      try {
        await sql`update deadlock_rows set n = n + 1 where id = ${b}`.execute(trx);
      } catch (err) {
        if (isTransientConflict(err)) deadlocks++;
        throw err;
      }
    };
    const round = () => {
      holding = 0;
      held = new Promise<void>((r) => (bothHold = r));
    };
    const metrics = createMetrics('test');
    const common = {
      broker: env.connect(),
      db: env.tdb.db,
      logger,
      metrics,
      contracts: [Ping] as const,
      maxAttempts: 3,
      setup: declareInternal,
    };
    const queue = (name: string) => ({
      queue: name,
      bindings: [{ exchange: EXCHANGES.internal, pattern: `${name}.none` }],
      retryDelaysMs: [60_000],
      deliveryLimit: 20,
    });
    const alone = new Consumer({
      ...common,
      name: 'deadlock-alone',
      queue: queue('test.deadlock-alone'),
      prefetch: 2,
      handlers: {
        'diagnostics.ping': ({ trx, envelope }) => lockBoth(trx, envelope.id, envelope.data.seq),
      },
    });
    const conn = await amqplib.connect(env.vhost.url);
    const ch = await conn.createConfirmChannel();
    const send = async (q: string, seqs: number[]) => {
      for (const seq of seqs) {
        const e = makeEnvelope(Ping, { seq });
        ch.sendToQueue(q, Buffer.from(JSON.stringify(e)), { messageId: e.id, type: e.type, persistent: true });
      }
      await ch.waitForConfirms();
    };
    await alone.start();
    let sent = 0;
    for (let r = 0; r < 3; r++) {
      round();
      const before = deadlocks;
      await send('test.deadlock-alone', [2 * r, 2 * r + 1]);
      sent += 2;
      await waitFor(async () => (await consumed(metrics, 'processed')) === sent, {
        what: `alone, round ${r}: both processed`,
        timeoutMs: 20_000,
      });
      t.ok(deadlocks > before, `alone, round ${r}: Postgres broke a deadlock (${deadlocks - before})`);
    }
    // Two windows of two: their four messages wait in the queue, and are delivered at once when
    // the consumer starts. A window locks in the order its first message says.
    const windowedConsumer = () =>
      new Consumer({
        ...common,
        name: 'deadlock-windows',
        queue: queue('test.deadlock-windows'),
        prefetch: 4,
        steps: {
          'diagnostics.ping': async () => {
            throw new Error('the step is not used for a type applied in windows');
          },
        },
        windows: {
          max: 2,
          concurrency: 2,
          open: () => ({ seqs: [] as { id: string; seq: number }[] }),
          close: async (trx, w) => {
            if (w.seqs.length) await lockBoth(trx, w.seqs[0]!.id, w.seqs[0]!.seq);
          },
          apply: {
            'diagnostics.ping': async ({ envelope, window }) => {
              window.seqs.push({ id: envelope.id, seq: envelope.data.seq });
            },
          },
        },
      });
    // Declared by one, taken by a fresh one once the four wait in the queue.
    const declaring = windowedConsumer();
    await declaring.start();
    await declaring.stop();
    const windowed = windowedConsumer();
    round();
    const before = deadlocks;
    await send('test.deadlock-windows', [100, 102, 101, 103]);
    await windowed.start();
    sent += 4;
    await waitFor(async () => (await consumed(metrics, 'processed')) === sent, {
      what: 'windows: all four processed',
      timeoutMs: 20_000,
    });
    t.ok(deadlocks > before, `windows: Postgres broke a deadlock (${deadlocks - before})`);
    t.same(windowed.windowStats, { applied: 2, redone: 0, messages: 4 }, 'two windows of two, none redone alone');
    const { rows } = await sql<{ n: number }>`select sum(n)::int as n from deadlock_rows`.execute(env.tdb.db);
    t.equal(rows[0]!.n, 2 * 6 + 2 * 2, 'each transaction changed both rows once (its ended try left nothing)');
    t.same(
      warnings.filter((w) => /retrying later|dead-lettered/.test(w)),
      [],
      'no message went to a retry queue or used an attempt',
    );
    await conn.close();
    await alone.stop();
    await windowed.stop();
  },
);
