import t from 'tap';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { setup } from './helpers.js';

const env = await setup();
t.teardown(() => env.close());

// A worker acks what it consumed and publishes what follows on the same connection, a few bytes
// each. With Nagle's algorithm on (amqplib's default), the publish waits in the kernel until the
// broker acknowledges the ack's segment, and the broker delays that acknowledgement up to 40 ms:
// every hop of the pipeline paid it (payment-worker: 46 ms from its commit to the role-worker).
t.test('a publish right after an ack leaves at once (no Nagle delay on the broker connection)', async (t) => {
  const broker = env.connect();
  const ROUNDS = 15;
  const gaps: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let sentAt = 0;
  const ch = broker.channel('ping-pong', async (c: ConfirmChannel) => {
    await c.assertQueue('test.nagle', { durable: false, autoDelete: true });
    await c.prefetch(1);
    await c.consume('test.nagle', (msg: ConsumeMessage | null) => {
      if (!msg) return;
      gaps.push(Date.now() - sentAt);
      // The ack (a small write) and then the next publish, as the pipeline's workers do.
      c.ack(msg);
      if (gaps.length >= ROUNDS) return done();
      sentAt = Date.now();
      c.publish('', 'test.nagle', Buffer.from(String(gaps.length)));
    });
  });
  t.teardown(() => ch.close());
  await ch.waitForConnect();
  sentAt = Date.now();
  await ch.sendToQueue('test.nagle', Buffer.from('0'));
  await Promise.race([
    finished,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${gaps.length} rounds in 10 s`)), 10_000)),
  ]);
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  // Nagle holds each publish for the broker's delayed ACK (about 40 ms on Linux); a loopback hop
  // without it is a millisecond or two, so a median of 20 ms leaves room for a loaded machine.
  t.ok(median < 20, `median publish → delivery ${median} ms (each: ${gaps.join(', ')})`);
});
