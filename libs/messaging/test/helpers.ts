import { Writable } from 'node:stream';
import amqplib from 'amqplib';
import { EXCHANGES, Ping } from '@billing/contracts';
import { createMigratedTestDb, type MigratedTestDb } from '@billing/db/testing';
import { createLogger, createMetrics } from '@billing/service-kit';
import { createTestVhost, type TestVhost } from '@billing/testing';
import { connectBroker, type Broker } from '../src/connection.js';
import { Consumer, type HandlerMap } from '../src/consumer.js';
import { declareInternal } from '../src/topology.js';

export const quietLogger = () =>
  process.env['TEST_LOG']
    ? createLogger({ service: 'test', level: 'debug' })
    : createLogger({ service: 'test', level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

export interface Env {
  tdb: MigratedTestDb;
  vhost: TestVhost;
  brokers: Broker[];
  connect(url?: string): Broker;
  close(): Promise<void>;
}

export async function setup(): Promise<Env> {
  const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
  const brokers: Broker[] = [];
  return {
    tdb,
    vhost,
    brokers,
    connect(url = vhost.url) {
      const b = connectBroker(url, quietLogger(), 'test');
      brokers.push(b);
      return b;
    },
    async close() {
      await Promise.allSettled(brokers.map((b) => b.close()));
      await Promise.allSettled([tdb.drop(), vhost.drop()]);
    },
  };
}

/** A Ping consumer whose handler writes an audit row (real state) and fails when told. */
export function pingConsumer(
  env: Env,
  broker: Broker,
  opts: {
    queue?: string;
    delays?: number[];
    maxAttempts?: number;
    failSeqs?: Set<number>;
    attemptsLog?: Map<number, number[]>;
    onCommitted?: () => void | Promise<void>;
    metrics?: ReturnType<typeof createMetrics>;
  } = {},
) {
  const handlers: HandlerMap<[typeof Ping]> = {
    'diagnostics.ping': async ({ trx, envelope }) => {
      const seq = envelope.data.seq;
      opts.attemptsLog?.set(seq, [...(opts.attemptsLog.get(seq) ?? []), Date.now()]);
      await trx
        .insertInto('audit_log')
        .values({ id: crypto.randomUUID(), actor: 'test', action: 'ping', target: String(seq), reason: envelope.id })
        .execute();
      if (envelope.data.fail || opts.failSeqs?.has(seq)) throw new Error(`ping ${seq} refused`);
    },
  };
  return new Consumer({
    name: 'test-consumer',
    broker,
    db: env.tdb.db,
    logger: quietLogger(),
    metrics: opts.metrics ?? createMetrics('test'),
    queue: {
      queue: opts.queue ?? 'test.pings',
      bindings: [{ exchange: EXCHANGES.internal, pattern: 'diagnostics.#' }],
      retryDelaysMs: opts.delays ?? [100, 200, 400],
      deliveryLimit: 20,
    },
    contracts: [Ping] as const,
    handlers,
    maxAttempts: opts.maxAttempts ?? 4,
    prefetch: 10,
    setup: declareInternal,
    ...(opts.onCommitted ? { onCommitted: opts.onCommitted } : {}),
  });
}

export async function auditCount(env: Env, seq?: number): Promise<number> {
  let q = env.tdb.db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('action', '=', 'ping');
  if (seq !== undefined) q = q.where('target', '=', String(seq));
  return Number((await q.executeTakeFirstOrThrow()).n);
}

/** A plain amqplib tap on an exchange: every message id that reaches it. */
export async function tapExchange(url: string, exchange: string, pattern: string) {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, exchange, pattern);
  const ids: string[] = [];
  await ch.consume(
    queue,
    (m) => {
      if (m) ids.push(m.properties.messageId as string);
    },
    { noAck: true },
  );
  return { ids, close: () => conn.close() };
}

/** How many messages a consumer settled with an outcome, read from its real metrics. */
export async function consumed(metrics: ReturnType<typeof createMetrics>, outcome: string): Promise<number> {
  const m = await metrics.messagesConsumed.get();
  return m.values.filter((v) => v.labels['outcome'] === outcome).reduce((a, v) => a + v.value, 0);
}
