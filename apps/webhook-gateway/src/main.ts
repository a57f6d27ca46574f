import { createRuntime, serve } from '@billing/runtime';
import { exitOnConfigError } from '@billing/service-kit';
import { buildApp } from './app.js';
import { loadGatewayConfig, type GatewayConfig } from './config.js';

const service = 'webhook-gateway';
let config: GatewayConfig;
try {
  config = loadGatewayConfig();
} catch (err) {
  exitOnConfigError(service, err);
}
const rt = createRuntime(service, config);
await serve(rt, { app: buildApp({ rt, config }), port: config.PORT });
