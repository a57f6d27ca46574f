import type { ConfirmChannel } from 'amqplib';
import { EXCHANGES, NOTIFICATIONS_BINDING, QUEUES } from '@billing/contracts';

/** SPEC §7, exactly: a declaration with other arguments would fail against the Notification service's. */
export async function declareNotifications(ch: ConfirmChannel): Promise<void> {
  await ch.assertExchange(EXCHANGES.notifications, 'topic', { durable: true });
  await ch.assertQueue(QUEUES.notifications, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.bindQueue(QUEUES.notifications, EXCHANGES.notifications, NOTIFICATIONS_BINDING);
}

export async function declareInternal(ch: ConfirmChannel): Promise<void> {
  await ch.assertExchange(EXCHANGES.internal, 'topic', { durable: true });
}

export interface WorkQueueSpec {
  queue: string;
  bindings: { exchange: string; pattern: string }[];
  /** One retry queue per distinct delay; a message waits there, then comes back to `queue`. */
  retryDelaysMs: readonly number[];
  /** Quorum `x-delivery-limit`: a message that keeps crashing its consumer is parked, not looped. */
  deliveryLimit: number;
}

export const retryQueueName = (queue: string, delayMs: number) => `${queue}.retry.${delayMs}ms`;
export const parkingQueueName = (queue: string) => `${queue}.parked`;

export async function declareWorkQueue(ch: ConfirmChannel, spec: WorkQueueSpec): Promise<void> {
  await ch.assertQueue(parkingQueueName(spec.queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.assertQueue(spec.queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': spec.deliveryLimit,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': parkingQueueName(spec.queue),
    },
  });
  for (const b of spec.bindings) {
    await ch.assertExchange(b.exchange, 'topic', { durable: true });
    await ch.bindQueue(spec.queue, b.exchange, b.pattern);
  }
  for (const delay of new Set(spec.retryDelaysMs)) {
    await ch.assertQueue(retryQueueName(spec.queue, delay), {
      durable: true,
      arguments: { 'x-message-ttl': delay, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': spec.queue },
    });
  }
}
