import { AuthClient } from '@billing/auth-client';
import { PayPalProvider } from '@billing/payments';
import { createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadBillingApiConfig } from './config.js';

const service = 'billing-api';
const config = loadOrExit(service, loadBillingApiConfig);
const rt = createRuntime(service, config);
const provider = new PayPalProvider({
  apiBase: config.PAYPAL_API_BASE,
  clientId: config.PAYPAL_CLIENT_ID,
  clientSecret: config.PAYPAL_CLIENT_SECRET,
  timeoutMs: config.PAYPAL_TIMEOUT_MS,
  logger: rt.logger,
  metrics: rt.metrics,
});
const auth = new AuthClient({ baseUrl: config.AUTH_SERVICE_URL, serviceToken: config.AUTH_SERVICE_TOKEN });
await serve(rt, { app: await buildApp({ rt, config, provider, auth }), port: config.PORT });
