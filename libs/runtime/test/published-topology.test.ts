import amqplib from 'amqplib';
import t from 'tap';
import { QUEUES, RefundRequested, RoleChangeRequested } from '@billing/contracts';
import { createMigratedTestDb } from '@billing/db/testing';
import { enqueue } from '@billing/messaging';
import { createTestVhost, waitFor } from '@billing/testing';
import { createRuntime } from '../src/runtime.js';

// docs/guarantees.md, messages never vanish: a message published before its consumer ever declared its queue must wait
// in that queue, not be routed nowhere and dropped.
t.test('messages published on a fresh broker, before any worker ran, wait in the work queues', async (t) => {
  const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
  const rt = createRuntime('topology-test', { DATABASE_URL: tdb.url, AMQP_URL: vhost.url, LOG_LEVEL: 'error' });
  t.teardown(async () => {
    await rt.close();
    await tdb.drop();
    await vhost.drop();
  });
  await rt.db.transaction().execute(async (trx) => {
    await enqueue(trx, RoleChangeRequested, {
      userId: 'u1',
      role: 'premium',
      source: 'manual',
      reason: 'test',
      forceRevoke: false,
    });
    await enqueue(trx, RefundRequested, { refundId: '00000000-0000-4000-8000-000000000001' });
  });
  await rt.relay.start();
  await waitFor(
    async () =>
      Number(
        (
          await rt.db
            .selectFrom('outbox')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('published_at', 'is', null)
            .executeTakeFirstOrThrow()
        ).n,
      ) === 0,
    { what: 'the outbox published' },
  );
  const conn = await amqplib.connect(vhost.url);
  t.teardown(() => conn.close());
  for (const queue of [QUEUES.roleWorker, QUEUES.paymentWorker]) {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const q = await ch.checkQueue(queue).catch((err: Error) => err);
    t.match(q, { messageCount: 1 }, `${queue} holds the message`);
    await ch.close().catch(() => undefined);
  }
});
