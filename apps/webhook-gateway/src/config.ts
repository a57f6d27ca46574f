import { baseConfig, env, httpConfig, loadConfig, paypalConfig } from '@billing/service-kit';

export const spec = {
  ...baseConfig,
  ...httpConfig,
  ...paypalConfig,
  PORT: env.port(3001),
  PAYPAL_WEBHOOK_ID: env.string(),
};
export const loadGatewayConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;
