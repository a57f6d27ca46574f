import { payPalFromEnv } from '@billing/payments';
import { createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadGatewayConfig } from './config.js';

const service = 'webhook-gateway';
const config = loadOrExit(service, loadGatewayConfig);
const rt = createRuntime(service, config);
const provider = payPalFromEnv(config, {
  webhookId: config.PAYPAL_WEBHOOK_ID,
  logger: rt.logger,
  metrics: rt.metrics,
  attempts: 2,
});
await serve(rt, { app: await buildApp({ rt, config, provider }), port: config.PORT });
