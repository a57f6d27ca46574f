import { PayPalProvider } from '@billing/payments';
import { createHealthServer, createRuntime, serve } from '@billing/runtime';
import { exitOnConfigError } from '@billing/service-kit';
import { loadPaymentWorkerConfig, type PaymentWorkerConfig } from './config.js';
import { buildWorker } from './worker.js';

const service = 'payment-worker';
let config: PaymentWorkerConfig;
try {
  config = loadPaymentWorkerConfig();
} catch (err) {
  exitOnConfigError(service, err);
}
const rt = createRuntime(service, config);
const provider = new PayPalProvider({ apiBase: config.PAYPAL_API_BASE, clientId: config.PAYPAL_CLIENT_ID, clientSecret: config.PAYPAL_CLIENT_SECRET, timeoutMs: config.PAYPAL_TIMEOUT_MS, logger: rt.logger });
const worker = buildWorker({ rt, provider, dunningRetryMs: config.DUNNING_RETRY_MS });
await serve(rt, { app: createHealthServer(rt), port: config.PORT, stopWork: worker.stop });
await worker.start();
