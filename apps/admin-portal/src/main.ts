import { AuthClient } from '@billing/auth-client';
import { createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadPortalConfig } from './config.js';

const service = 'admin-portal';
const config = loadOrExit(service, loadPortalConfig);
const rt = createRuntime(service, config);
const auth = new AuthClient({ baseUrl: config.AUTH_SERVICE_URL, serviceToken: config.AUTH_SERVICE_TOKEN });
await serve(rt, { app: await buildApp({ rt, config, auth }), port: config.PORT });
