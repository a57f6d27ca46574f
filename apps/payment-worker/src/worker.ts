import { PaymentCheckRequested, ProviderEventReceived, RefundRequested, RenewalChargeRequested } from '@billing/contracts';
import { Consumer, WORK_QUEUES, type HandlerMap, type WorkQueueSpec } from '@billing/messaging';
import type { PaymentProvider } from '@billing/payments';
import { declarePublishedTopology, type Runtime } from '@billing/runtime';
import { sql } from 'kysely';
import { PaymentService } from './handlers/payments.js';

export const paymentQueue: WorkQueueSpec = WORK_QUEUES.payment;
/** Provider calls that keep failing are retried for about an hour before they are dead-lettered. */
export const PAYMENT_MAX_ATTEMPTS = 30;

export interface Worker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const contracts = [ProviderEventReceived, PaymentCheckRequested, RefundRequested, RenewalChargeRequested] as const;

/** The payment-worker: applies PayPal's outcomes to payments (SPEC §4) and sends refunds. */
export function buildWorker({ rt, provider, dunningRetryMs, retryDelaysMs }: { rt: Runtime; provider: PaymentProvider; dunningRetryMs: readonly number[]; retryDelaysMs?: number[] }): Worker {
  const payments = new PaymentService(provider, rt.logger, dunningRetryMs);
  const handlers: HandlerMap<typeof contracts> = {
    'payment.provider-event.received': async ({ trx, envelope, logger }) => {
      const event = await trx.selectFrom('provider_events').selectAll().where('id', '=', envelope.data.providerEventRowId).forUpdate().executeTakeFirst();
      if (!event || event.processed_at) return;
      const result = await payments.onAction(trx, provider.parseWebhook(event.payload));
      await trx.updateTable('provider_events').set({ processed_at: sql`now()`, outcome: result.outcome, payment_id: result.paymentId }).where('id', '=', event.id).execute();
      logger.info('provider event applied', { eventType: event.event_type, providerEventId: event.provider_event_id, ...result });
    },
    'payment.check.requested': async ({ trx, envelope, logger }) => {
      const outcome = await payments.check(trx, envelope.data.orderId, envelope.data.expireUnapproved ?? false);
      logger.info('order checked', { orderId: envelope.data.orderId, source: envelope.data.source, outcome });
    },
    'payment.renewal.requested': async ({ trx, envelope, logger }) => {
      const outcome = await payments.chargeRenewal(trx, envelope.data.paymentId);
      logger.info('renewal charged', { paymentId: envelope.data.paymentId, outcome });
    },
    'payment.refund.requested': async ({ trx, envelope, logger }) => {
      const outcome = await payments.sendRefund(trx, envelope.data.refundId);
      logger.info('refund sent', { refundId: envelope.data.refundId, outcome });
    },
  };
  const consumer = new Consumer({
    name: 'payment-worker', broker: rt.broker, db: rt.db, logger: rt.logger, metrics: rt.metrics,
    queue: retryDelaysMs ? { ...paymentQueue, retryDelaysMs } : paymentQueue, contracts, handlers,
    maxAttempts: PAYMENT_MAX_ATTEMPTS, prefetch: 16, setup: declarePublishedTopology,
  });
  return { start: () => consumer.start(), stop: () => consumer.stop() };
}
