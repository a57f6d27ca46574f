import { createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadPortalConfig } from './config.js';

const service = 'admin-portal';
const config = loadOrExit(service, loadPortalConfig);
const rt = createRuntime(service, config);
await serve(rt, { app: buildApp({ rt, config }), port: config.PORT });
