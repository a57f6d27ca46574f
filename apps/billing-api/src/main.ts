import { createRuntime, serve } from '@billing/runtime';
import { exitOnConfigError } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadBillingApiConfig, type BillingApiConfig } from './config.js';

const service = 'billing-api';
let config: BillingApiConfig;
try {
  config = loadBillingApiConfig();
} catch (err) {
  exitOnConfigError(service, err);
}
const rt = createRuntime(service, config);
await serve(rt, { app: buildApp({ rt, config }), port: config.PORT });
