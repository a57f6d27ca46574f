import { payPalFromEnv } from '@billing/payments';
import { createHealthServer, createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { loadPaymentWorkerConfig } from './config.js';
import { buildWorker } from './worker.js';

const service = 'payment-worker';
const config = loadOrExit(service, loadPaymentWorkerConfig);
const rt = createRuntime(service, config);
const provider = payPalFromEnv(config, { logger: rt.logger, metrics: rt.metrics });
const worker = buildWorker({
  rt,
  provider,
  dunningRetryMs: config.DUNNING_RETRY_MS,
  publicBaseUrl: config.PUBLIC_BASE_URL,
  recoveryLinkSecret: config.RECOVERY_LINK_SECRET,
});
await serve(rt, { app: createHealthServer(rt), port: config.PORT, stopWork: worker.stop });
await worker.start();
