import { AuthClient } from '@billing/auth-client';
import { createHealthServer, createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { loadRoleWorkerConfig } from './config.js';
import { buildWorker } from './worker.js';

const service = 'role-worker';
const config = loadOrExit(service, loadRoleWorkerConfig);
const rt = createRuntime(service, config);
const worker = buildWorker({
  rt,
  auth: new AuthClient({ baseUrl: config.AUTH_SERVICE_URL, serviceToken: config.AUTH_SERVICE_TOKEN }),
});
await serve(rt, { app: createHealthServer(rt), port: config.PORT, stopWork: worker.stop });
await worker.start();
