import { AuthClient } from '@billing/auth-client';
import { payPalFromEnv } from '@billing/payments';
import { createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadBillingApiConfig } from './config.js';

const service = 'billing-api';
const config = loadOrExit(service, loadBillingApiConfig);
const rt = createRuntime(service, config);
const provider = payPalFromEnv(config, { logger: rt.logger, metrics: rt.metrics });
const auth = new AuthClient({ baseUrl: config.AUTH_SERVICE_URL, serviceToken: config.AUTH_SERVICE_TOKEN });
await serve(rt, { app: await buildApp({ rt, config, provider, auth }), port: config.PORT });
