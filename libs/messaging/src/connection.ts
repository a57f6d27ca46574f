import amqp, { type AmqpConnectionManager, type ChannelWrapper, type SetupFunc } from 'amqp-connection-manager';
import type { Logger } from '@billing/service-kit';

/** One broker connection a process, reconnecting by itself (amqp-connection-manager). */
export interface Broker {
  manager: AmqpConnectionManager;
  isConnected(): boolean;
  /** A confirm channel whose `setup` (topology, prefetch, consumers) runs again on every reconnect. */
  channel(name: string, setup?: SetupFunc, publishTimeoutMs?: number): ChannelWrapper;
  close(): Promise<void>;
}

/** `url`: one broker, or the nodes of a cluster comma-separated (tried in turn on every reconnect). */
export function connectBroker(url: string, logger: Logger, connectionName: string): Broker {
  const urls = url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  const manager = amqp.connect(urls, {
    heartbeatIntervalInSeconds: 5,
    reconnectTimeInSeconds: 1,
    // noDelay: amqplib leaves Nagle's algorithm on, so a publish written right after an ack waited
    // for the broker's delayed ACK (about 40 ms a hop; docs/messages.md).
    connectionOptions: { noDelay: true, clientProperties: { connection_name: connectionName } },
  });
  manager.on('connect', () => logger.info('rabbitmq connected'));
  manager.on('disconnect', ({ err }) => logger.warn('rabbitmq disconnected', { error: err?.message }));
  manager.on('connectFailed', ({ err }) => logger.warn('rabbitmq connect failed', { error: err?.message }));
  const channels: ChannelWrapper[] = [];
  return {
    manager,
    isConnected: () => manager.isConnected(),
    channel(name, setup, publishTimeoutMs = 5_000) {
      const ch = manager.createChannel({
        name,
        confirm: true,
        publishTimeout: publishTimeoutMs,
        ...(setup ? { setup } : {}),
      });
      ch.on('error', (err: Error) => logger.warn('rabbitmq channel error', { channel: name, error: err.message }));
      channels.push(ch);
      return ch;
    },
    async close() {
      await Promise.allSettled(channels.map((c) => c.close()));
      await manager.close();
    },
  };
}
