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
const worker = buildWorker({ rt, config });
await serve(rt, { app: createHealthServer(rt), port: config.PORT, stopWork: worker.stop });
await worker.start();
