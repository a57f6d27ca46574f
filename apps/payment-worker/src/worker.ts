import { PaymentCheckRequested, ProviderEventReceived, RefundRequested, RenewalChargeRequested } from '@billing/contracts';
import { Consumer, WORK_QUEUES, type StepHandlerMap, type WorkQueueSpec } from '@billing/messaging';
import type { PaymentProvider } from '@billing/payments';
import { declarePublishedTopology, type Runtime } from '@billing/runtime';
import { sql } from 'kysely';
import { CAPTURE_NEEDED, PaymentService } from './handlers/payments.js';

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
  // Step handlers (issue 8, defect 4): no transaction is held while PayPal answers. Each step is
  // safe to run again (state machines, PayPal-Request-Id), so a crash between steps heals on redelivery.
  const steps: StepHandlerMap<typeof contracts> = {
    'payment.provider-event.received': async ({ db, envelope, logger }) => {
      const applied = await db.transaction().execute(async (trx) => {
        const event = await trx.selectFrom('provider_events').selectAll().where('id', '=', envelope.data.providerEventRowId).forUpdate().executeTakeFirst();
        if (!event) return null;
        if (event.processed_at) {
          // Applied before; an approval whose capture never happened (a crash after this step) is captured now.
          return event.event_type === 'CHECKOUT.ORDER.APPROVED' && event.payment_id ? { paymentId: event.payment_id, outcome: CAPTURE_NEEDED } : null;
        }
        const result = await payments.onAction(trx, provider.parseWebhook(event.payload));
        await trx.updateTable('provider_events').set({ processed_at: sql`now()`, outcome: result.outcome, payment_id: result.paymentId }).where('id', '=', event.id).execute();
        logger.info('provider event applied', { eventType: event.event_type, providerEventId: event.provider_event_id, ...result });
        return result;
      });
      if (applied?.paymentId && applied.outcome === CAPTURE_NEEDED) {
        logger.info('order captured', { paymentId: applied.paymentId, outcome: await payments.capture(db, applied.paymentId) });
      }
    },
    'payment.check.requested': async ({ db, envelope, logger }) => {
      const outcome = await payments.check(db, envelope.data.orderId, envelope.data.expireUnapproved ?? false);
      logger.info('order checked', { orderId: envelope.data.orderId, source: envelope.data.source, outcome });
    },
    'payment.renewal.requested': async ({ db, envelope, logger }) => {
      const outcome = await payments.chargeRenewal(db, envelope.data.paymentId);
      logger.info('renewal charged', { paymentId: envelope.data.paymentId, outcome });
    },
    'payment.refund.requested': async ({ db, envelope, logger }) => {
      const outcome = await payments.sendRefund(db, envelope.data.refundId);
      logger.info('refund sent', { refundId: envelope.data.refundId, outcome });
    },
  };
  const consumer = new Consumer({
    name: 'payment-worker', broker: rt.broker, db: rt.db, logger: rt.logger, metrics: rt.metrics,
    queue: retryDelaysMs ? { ...paymentQueue, retryDelaysMs } : paymentQueue, contracts, steps,
    maxAttempts: PAYMENT_MAX_ATTEMPTS, prefetch: 16, setup: declarePublishedTopology,
  });
  return { start: () => consumer.start(), stop: () => consumer.stop() };
}
