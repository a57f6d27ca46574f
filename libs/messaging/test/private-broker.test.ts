import t from 'tap';
import amqplib from 'amqplib';
import { EXCHANGES, Ping } from '@billing/contracts';
import { canStartRabbitNode, startRabbitNode, waitFor } from '@billing/testing';
import { Consumer } from '../src/consumer.js';
import { makeEnvelope } from '../src/envelope.js';
import { Publisher } from '../src/publisher.js';
import { declareInternal } from '../src/topology.js';
import { auditCount, pingConsumer, quietLogger, setup } from './helpers.js';

// Tests that need a broker configured otherwise than the shared one, or stopped: a node of their own.
// The broker closes a channel whose delivery stays unacknowledged past its consumer timeout (30
// minutes by default) and delivers the message again. On RabbitMQ 3.10 the timeout is node-wide,
// so the test starts a node of its own with a 2 s timeout checked every 500 ms; the shared broker
// is never reconfigured.
if (!(await canStartRabbitNode())) {
  t.pass('skipped: rabbitmq-server is not installed here, and the consumer-timeout test needs a node of its own');
} else {
  const env = await setup();
  const node = await startRabbitNode({ advanced: ['{consumer_timeout, 2000}', '{channel_tick_interval, 500}'] });
  t.teardown(async () => {
    await env.close();
    await node.stop();
  });

  t.test(
    'a handler slower than the broker’s consumer timeout: the work is recorded once, nothing lost, nothing dead-lettered',
    async (t) => {
      const runs = new Map<number, number>();
      const consumer = new Consumer({
        name: 'slow-consumer',
        broker: env.connect(node.url),
        db: env.tdb.db,
        logger: quietLogger(),
        queue: {
          queue: 'test.slow',
          bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
          retryDelaysMs: [100],
          deliveryLimit: 20,
        },
        contracts: [Ping] as const,
        maxAttempts: 3,
        prefetch: 10,
        setup: declareInternal,
        steps: {
          'diagnostics.ping': async ({ envelope, commit }) => {
            const seq = envelope.data.seq;
            const run = (runs.get(seq) ?? 0) + 1;
            runs.set(seq, run);
            // The first run of message 1 outlasts the timeout (a slow call to the outside world).
            if (seq === 1 && run === 1) await new Promise((r) => setTimeout(r, 4_000));
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
        },
      });
      await consumer.start();
      const conn = await amqplib.connect(node.url);
      const ch = await conn.createConfirmChannel();
      const send = async (seq: number) => {
        const e = makeEnvelope(Ping, { seq });
        ch.sendToQueue('test.slow', Buffer.from(JSON.stringify(e)), {
          messageId: e.id,
          type: e.type,
          persistent: true,
        });
        await ch.waitForConfirms();
      };
      await send(1);
      await waitFor(async () => (runs.get(1) ?? 0) >= 2, {
        what: 'message 1 delivered again after the broker closed the slow channel',
        timeoutMs: 15_000,
      });
      for (let seq = 2; seq <= 11; seq++) await send(seq);
      await waitFor(async () => (await auditCount(env)) === 11, { what: 'all eleven recorded', timeoutMs: 20_000 });
      await waitFor(async () => (await ch.checkQueue('test.slow')).messageCount === 0, { what: 'the queue empty' });
      // Settled, not merely delivered: nothing unacknowledged remains once the consumer is gone.
      await consumer.stop();
      const left = await ch.checkQueue('test.slow');
      t.equal(left.messageCount, 0, 'nothing handed back: every delivery was settled');
      t.equal(await auditCount(env, 1), 1, 'the slow message recorded once, though its handler ran twice');
      for (let seq = 2; seq <= 11; seq++) t.equal(await auditCount(env, seq), 1, `message ${seq} recorded once`);
      const dead = await env.tdb.db.selectFrom('dead_letters').selectAll().execute();
      t.equal(dead.length, 0, 'nothing dead-lettered');
      t.equal((await ch.checkQueue('test.slow.parked')).messageCount, 0, 'nothing parked');
      await conn.close();
    },
  );

  t.test('RabbitMQ restarted while messages are published and consumed: each recorded once, none lost', async (t) => {
    const broker = env.connect(node.url);
    const consumer = pingConsumer(env, broker, { queue: 'test.restart' });
    await consumer.start();
    const publisher = new Publisher(env.connect(node.url), declareInternal, 2_000);
    const N = 300;
    const FIRST = 1000; // message numbers of this test
    const before = await auditCount(env);
    // As the outbox relay does: a publish the broker did not confirm is sent again (same message id).
    const sendConfirmed = async (seq: number) => {
      const envelope = makeEnvelope(Ping, { seq });
      for (;;) {
        try {
          await publisher.publishEnvelope(Ping.exchange, Ping.routingKey, envelope);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    let restarted = 0;
    const sending = (async () => {
      for (let seq = FIRST; seq < FIRST + N; seq++) {
        await sendConfirmed(seq);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await waitFor(async () => (await auditCount(env)) - before >= 50, {
      what: '50 messages through before the restart',
    });
    const stopped = Date.now();
    await node.ctl('stop_app');
    await new Promise((r) => setTimeout(r, 2_000)); // the broker away for 2 s: publishes and acks wait
    await node.ctl('start_app');
    restarted = Date.now();
    await sending;
    await waitFor(async () => (await auditCount(env)) - before >= N, {
      what: `all ${N} recorded after the restart`,
      timeoutMs: 60_000,
    });
    t.comment(
      `broker stopped for ${restarted - stopped} ms; all ${N} recorded ${Date.now() - restarted} ms after it was back`,
    );
    const counts = await env.tdb.db
      .selectFrom('audit_log')
      .select(['target', (eb) => eb.fn.countAll<string>().as('n')])
      .where('action', '=', 'ping')
      .groupBy('target')
      .execute()
      .then((rows) => rows.filter((r) => Number(r.target) >= FIRST));
    t.equal(counts.length, N, `every one of the ${N} messages recorded`);
    t.same(
      counts.filter((c) => Number(c.n) !== 1),
      [],
      'none recorded twice',
    );
    t.equal((await env.tdb.db.selectFrom('dead_letters').selectAll().execute()).length, 0, 'nothing dead-lettered');
    await consumer.stop();
  });
}
