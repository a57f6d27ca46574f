import { PayPalProvider } from '@billing/payments';
import { createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadGatewayConfig } from './config.js';

const service = 'webhook-gateway';
const config = loadOrExit(service, loadGatewayConfig);
const rt = createRuntime(service, config);
const provider = new PayPalProvider({
  apiBase: config.PAYPAL_API_BASE,
  clientId: config.PAYPAL_CLIENT_ID,
  clientSecret: config.PAYPAL_CLIENT_SECRET,
  timeoutMs: config.PAYPAL_TIMEOUT_MS,
  webhookId: config.PAYPAL_WEBHOOK_ID,
  logger: rt.logger,
  metrics: rt.metrics,
  attempts: 2,
});
await serve(rt, { app: await buildApp({ rt, config, provider }), port: config.PORT });
