import type { ConfirmChannel } from 'amqplib';
import { EXCHANGES, QUEUES, ROUTES } from '@billing/contracts';
import { declareWorkQueue, type WorkQueueSpec } from '@billing/messaging';
import type { Runtime } from '@billing/runtime';
import type { PaymentWorkerConfig } from './config.js';

/** Competing consumers share this quorum queue; a failing message waits 1 s, 5 s, 30 s, then 2 min between tries. */
export const paymentQueue: WorkQueueSpec = {
  queue: QUEUES.paymentWorker,
  bindings: [{ exchange: EXCHANGES.internal, pattern: ROUTES.payment }],
  retryDelaysMs: [1_000, 5_000, 30_000, 120_000],
  deliveryLimit: 50,
};

export interface Worker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The payment-worker: applies PayPal's outcomes to payments (SPEC §4). */
export function buildWorker({ rt }: { rt: Runtime; config: PaymentWorkerConfig }): Worker {
  const topology = rt.broker.channel('payment-worker-topology', (ch: ConfirmChannel) => declareWorkQueue(ch, paymentQueue));
  return {
    start: () => topology.waitForConnect(),
    stop: () => topology.close(),
  };
}
