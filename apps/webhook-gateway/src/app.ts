import type { PaymentProvider } from '@billing/payments';
import type { Runtime } from '@billing/runtime';
import { createHttpApp, type HttpApp } from '@billing/service-kit';
import type { GatewayConfig } from './config.js';
import { paypalWebhookRoute } from './routes/paypal.js';

/** docs/webhooks.md: PayPal's callbacks are up to 1 MiB. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export function buildApp({ rt, provider }: { rt: Runtime; config: GatewayConfig; provider: PaymentProvider }): HttpApp {
  const app = createHttpApp({
    service: rt.service,
    logger: rt.logger,
    metrics: rt.metrics,
    readiness: rt.readiness,
    bodyLimit: WEBHOOK_BODY_LIMIT,
  });
  paypalWebhookRoute(app, { rt, provider });
  return app;
}
