import type { PaymentProvider } from '@billing/payments';
import type { Runtime } from '@billing/runtime';
import { createHttpApp, registerRateLimits, trustProxyOf, type HttpApp } from '@billing/service-kit';
import type { GatewayConfig } from './config.js';
import { paypalWebhookRoute } from './routes/paypal.js';

/** docs/webhooks.md: PayPal's callbacks are up to 1 MiB. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export async function buildApp({
  rt,
  config,
  provider,
}: {
  rt: Runtime;
  config: GatewayConfig;
  provider: PaymentProvider;
}): Promise<HttpApp> {
  const app = createHttpApp({
    service: rt.service,
    logger: rt.logger,
    metrics: rt.metrics,
    readiness: rt.readiness,
    bodyLimit: WEBHOOK_BODY_LIMIT,
    trustProxy: trustProxyOf(config.TRUST_PROXY),
  });
  await registerRateLimits(app);
  paypalWebhookRoute(app, {
    rt,
    provider,
    perClientPerMinute: config.WEBHOOK_RATE_LIMIT_PER_MINUTE,
    maxPending: config.WEBHOOK_MAX_PENDING,
    transmissionToleranceMs: config.WEBHOOK_TRANSMISSION_TOLERANCE_MS,
    apiBase: config.PAYPAL_API_BASE,
  });
  return app;
}
