import type { ConfirmChannel } from 'amqplib';
import { EXCHANGES, QUEUES, ROUTES } from '@billing/contracts';
import { declareWorkQueue, type WorkQueueSpec } from '@billing/messaging';
import type { Runtime } from '@billing/runtime';
import type { RoleWorkerConfig } from './config.js';

/**
 * SPEC §6: a role change is retried with exponential back-off, the first retry within 2 s and
 * at most 60 s apart, for at least 24 hours before it is dead-lettered.
 */
export const ROLE_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000] as const;
export const ROLE_MAX_ATTEMPTS = ROLE_RETRY_DELAYS_MS.length + Math.ceil((24 * 3_600_000) / 60_000) + 1;

export const roleQueue: WorkQueueSpec = {
  queue: QUEUES.roleWorker,
  bindings: [{ exchange: EXCHANGES.internal, pattern: ROUTES.role }],
  retryDelaysMs: ROLE_RETRY_DELAYS_MS,
  deliveryLimit: 50,
};

export interface Worker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The role-worker: applies role changes at the Auth service (SPEC §6). */
export function buildWorker({ rt }: { rt: Runtime; config: RoleWorkerConfig }): Worker {
  const topology = rt.broker.channel('role-worker-topology', (ch: ConfirmChannel) => declareWorkQueue(ch, roleQueue));
  return {
    start: () => topology.waitForConnect(),
    stop: () => topology.close(),
  };
}
