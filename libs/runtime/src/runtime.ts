import { randomUUID } from 'node:crypto';
import type { ConfirmChannel } from 'amqplib';
import { createDb, pingDb, type Db } from '@billing/db';
import {
  connectBroker,
  declareInternal,
  declareNotifications,
  declareWorkQueue,
  OutboxRelay,
  WORK_QUEUES,
  type Broker,
} from '@billing/messaging';
import {
  createHttpApp,
  createLogger,
  createMetrics,
  handleSignals,
  secretValues,
  type HttpApp,
  type Logger,
  type Metrics,
  type ReadinessChecks,
} from '@billing/service-kit';

export interface RuntimeConfig {
  DATABASE_URL: string;
  AMQP_URL: string;
  LOG_LEVEL: string;
  ELASTICSEARCH_URL?: string | undefined;
  /** The address HTTP servers listen on (docs/processes.md); all interfaces unless set. */
  HOST?: string | undefined;
}

/** What every process holds: logger, metrics, one pool, one broker connection, the outbox relay. */
export interface Runtime {
  service: string;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  /** Connections in `db`'s pool. */
  poolSize: number;
  /** What a consumer may hold at once: the pool less the relay's connection (docs/guarantees.md, backpressure). */
  consumerConnections: number;
  databaseUrl: string;
  /** The address to listen on. */
  host: string;
  broker: Broker;
  relay: OutboxRelay;
  readiness: ReadinessChecks;
  /** Closes the relay, the broker and the pool, in that order. */
  close(): Promise<void>;
}

/** Every app declares, at start-up, the exchanges it publishes to (docs/messages.md). */
export async function declarePublishedTopology(ch: ConfirmChannel): Promise<void> {
  await declareInternal(ch);
  await declareNotifications(ch);
  // The queues we publish to, too: a message sent before its consumer first declared its queue
  // would otherwise be routed nowhere and dropped.
  for (const spec of Object.values(WORK_QUEUES)) await declareWorkQueue(ch, spec);
}

export function createRuntime(
  service: string,
  config: RuntimeConfig & Record<string, unknown>,
  { poolSize = Number(config['DB_POOL_SIZE'] ?? 10) } = {},
): Runtime {
  const logger = createLogger({
    service,
    level: config.LOG_LEVEL,
    elasticsearchUrl: config.ELASTICSEARCH_URL,
    secrets: secretValues(config),
  });
  const metrics = createMetrics(service);
  // What this process commits to the outbox, its relay publishes at once (docs/messages.md, outbox).
  // Its rows are tagged with its relay's name, so the relay reads them without a claim transaction.
  let wakeRelay = () => {};
  const outboxOwner = `${service}.${randomUUID()}`;
  const db = createDb(config.DATABASE_URL, {
    max: poolSize,
    applicationName: service,
    onOutboxCommitted: () => wakeRelay(),
    outboxOwner,
  });
  const broker = connectBroker(config.AMQP_URL, logger, service);
  const relay = new OutboxRelay({
    db,
    databaseUrl: config.DATABASE_URL,
    broker,
    logger,
    metrics,
    setup: declarePublishedTopology,
    owner: outboxOwner,
  });
  wakeRelay = () => relay.wake();
  return {
    service,
    host: config.HOST ?? '0.0.0.0',
    logger,
    metrics,
    db,
    poolSize,
    consumerConnections: Math.max(1, poolSize - 1),
    databaseUrl: config.DATABASE_URL,
    broker,
    relay,
    readiness: { postgres: () => pingDb(db), rabbitmq: () => broker.isConnected() },
    async close() {
      await relay.stop();
      await broker.close();
      await db.destroy();
    },
  };
}

/** A process with no routes of its own (the workers, the scheduler): health, readiness and metrics. */
export function createHealthServer(rt: Runtime): HttpApp {
  return createHttpApp({ service: rt.service, logger: rt.logger, metrics: rt.metrics, readiness: rt.readiness });
}

export interface Serving {
  app: HttpApp;
  port: number;
  /** Stops the service's own work (consumers, jobs) before connections close. */
  stopWork?: () => Promise<void>;
}

/**
 * Listens, starts the relay, and on SIGTERM stops taking requests and work, finishes what is
 * in flight and closes connections (docs/processes.md).
 */
export async function serve(rt: Runtime, { app, port, stopWork }: Serving): Promise<void> {
  await app.listen({ port, host: rt.host });
  rt.logger.info('listening', { host: rt.host, port });
  await rt.relay.start();
  handleSignals(rt.service, rt.logger, {
    async stop() {
      await Promise.all([app.close(), stopWork?.()]);
      // A transaction handed back at shutdown still holds its connection; the pool would wait
      // for it for ever. Its process exiting rolls it back, so closing waits a bounded time.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([rt.close(), new Promise<void>((r) => (timer = setTimeout(r, 1_500)))]);
      clearTimeout(timer);
    },
  });
}
