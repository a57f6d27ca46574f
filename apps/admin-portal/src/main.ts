import { createRuntime, serve } from '@billing/runtime';
import { exitOnConfigError } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadPortalConfig, type PortalConfig } from './config.js';

const service = 'admin-portal';
let config: PortalConfig;
try {
  config = loadPortalConfig();
} catch (err) {
  exitOnConfigError(service, err);
}
const rt = createRuntime(service, config);
await serve(rt, { app: buildApp({ rt, config }), port: config.PORT });
