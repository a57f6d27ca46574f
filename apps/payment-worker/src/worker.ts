import {
  DisputeActionRequested,
  PaymentCheckRequested,
  PaymentMethodApproved,
  PlanChangeChargeRequested,
  ProviderEventReceived,
  RefundRequested,
  RenewalChargeRequested,
} from '@billing/contracts';
import { Consumer, WORK_QUEUES, type StepHandlerMap, type WorkQueueSpec } from '@billing/messaging';
import type { PaymentProvider } from '@billing/payments';
import { declarePublishedTopology, type Runtime } from '@billing/runtime';
import { applyProviderEvent, applyProviderEventInWindow } from './handlers/apply-provider-event.js';
import { paymentWindow } from './payments/window.js';
import { chargeRenewalInWindow, RenewalAnswers } from './payments/renewal-charges.js';
import { TransactionGroup } from '@billing/db';
import { chargePlanChangeHandler, chargeRenewalHandler } from './handlers/charge-renewal.js';
import { checkOrderHandler } from './handlers/check-order.js';
import { paymentMethodApprovedHandler } from './handlers/payment-method.js';
import { sendDisputeActionHandler } from './handlers/send-dispute-action.js';
import { sendRefundHandler } from './handlers/send-refund.js';
import type { PaymentContext } from './payments/context.js';

export const paymentQueue: WorkQueueSpec = WORK_QUEUES.payment;
/** Provider calls that keep failing are retried for about an hour before they are dead-lettered. */
export const PAYMENT_MAX_ATTEMPTS = 30;

export interface Worker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const contracts = [
  ProviderEventReceived,
  PaymentCheckRequested,
  RefundRequested,
  RenewalChargeRequested,
  PlanChangeChargeRequested,
  PaymentMethodApproved,
  DisputeActionRequested,
] as const;

/** The payment-worker: applies PayPal's outcomes to payments (docs/webhooks.md) and sends refunds. */
export function buildWorker({
  rt,
  provider,
  dunningRetryMs,
  retryDelaysMs,
  publicBaseUrl = 'http://127.0.0.1:3000',
  recoveryLinkSecret,
}: {
  rt: Runtime;
  provider: PaymentProvider;
  dunningRetryMs: readonly number[];
  retryDelaysMs?: number[];
  publicBaseUrl?: string;
  /** RECOVERY_LINK_SECRET (docs/api.md, recovery links); unset: no links. */
  recoveryLinkSecret?: string | undefined;
}): Worker {
  const ctx: PaymentContext = {
    provider,
    logger: rt.logger,
    dunningRetryMs,
    metrics: rt.metrics,
    publicBaseUrl,
    ...(recoveryLinkSecret ? { recoveryLinks: { baseUrl: publicBaseUrl, secret: recoveryLinkSecret } } : {}),
    // PayPal's answers recorded in the same turn share a transaction (docs/messages.md, windows).
    records: new TransactionGroup(rt.db, paymentWindow),
  };
  // Renewal charges' answers recorded together, the common ones set-based (docs/messages.md, windows).
  ctx.charges = new RenewalAnswers(ctx, rt.db);
  // Step handlers (docs/architecture.md, calling the outside world): no transaction is held while PayPal answers. Each step is
  // safe to run again (state machines, PayPal-Request-Id), so a crash between steps heals on redelivery.
  const steps: StepHandlerMap<typeof contracts> = {
    'payment.provider-event.received': applyProviderEvent(ctx),
    'payment.check.requested': checkOrderHandler(ctx),
    'payment.renewal.requested': chargeRenewalHandler(ctx),
    'payment.plan-change.requested': chargePlanChangeHandler(ctx),
    'payment.method.approved': paymentMethodApprovedHandler(ctx),
    'payment.refund.requested': sendRefundHandler(ctx),
    'payment.dispute.action.requested': sendDisputeActionHandler(ctx),
  };
  const consumer = new Consumer({
    name: 'payment-worker',
    broker: rt.broker,
    db: rt.db,
    connections: rt.consumerConnections,
    logger: rt.logger,
    metrics: rt.metrics,
    queue: retryDelaysMs ? { ...paymentQueue, retryDelaysMs } : paymentQueue,
    contracts,
    steps,
    groupCommits: true,
    // PayPal's webhooks taken at once are applied in one transaction, their receipts numbered
    // together at its end (docs/messages.md, windows).
    windows: {
      apply: {
        'payment.provider-event.received': applyProviderEventInWindow(ctx, rt.db),
        'payment.renewal.requested': chargeRenewalInWindow(ctx, rt.db),
      },
      ...paymentWindow,
      // Up to three windows' transactions at once, of up to 32 each (docs/messages.md, windows side
      // by side): each locks every payment its messages name up front, in id order, and a deadlock
      // left (with a buyer's cancel, say) runs the window again in place.
      concurrency: 3,
      max: 32,
    },
    maxAttempts: PAYMENT_MAX_ATTEMPTS,
    prefetch: 128,
    setup: declarePublishedTopology,
  });
  return { start: () => consumer.start(), stop: () => consumer.stop() };
}
