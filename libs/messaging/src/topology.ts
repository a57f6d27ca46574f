import type { ConfirmChannel } from 'amqplib';
import { EXCHANGES, NOTIFICATIONS_BINDING, QUEUES, ROUTES } from '@billing/contracts';

/** docs/messages.md, exactly: a declaration with other arguments would fail against the Notification service's. */
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

/**
 * Quorum queues (replicated, so a retry survives the loss of a cluster node). Until 2026-11-28 they
 * were classic queues named `<queue>.retry.<ms>ms`, which live on one node: with that node gone,
 * declaring them failed and no consumer could start. Such an old queue empties itself (its TTL sends
 * every message back to the work queue) and can then be deleted.
 */
export const retryQueueName = (queue: string, delayMs: number) => `${queue}.delay.${delayMs}ms`;
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
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': delay,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': spec.queue,
      },
    });
  }
}

/**
 * docs/auth.md: a role change is retried with exponential back-off, the first retry within 2 s and
 * at most 60 s apart, for at least 24 hours before it is dead-lettered.
 */
export const ROLE_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000] as const;

/**
 * The work queues, declared alike by their consumer and by every publisher (a message published
 * before its consumer first ran must not be dropped), so their arguments live here, once.
 */
export const WORK_QUEUES = {
  /** Competing payment-workers; a failing message waits 1 s, 5 s, 30 s, then 2 min between tries. */
  payment: {
    queue: QUEUES.paymentWorker,
    bindings: [{ exchange: EXCHANGES.internal, pattern: ROUTES.payment }],
    retryDelaysMs: [1_000, 5_000, 30_000, 120_000],
    deliveryLimit: 50,
  },
  role: {
    queue: QUEUES.roleWorker,
    bindings: [{ exchange: EXCHANGES.internal, pattern: ROUTES.role }],
    retryDelaysMs: ROLE_RETRY_DELAYS_MS,
    deliveryLimit: 50,
  },
} as const satisfies Record<string, WorkQueueSpec>;
