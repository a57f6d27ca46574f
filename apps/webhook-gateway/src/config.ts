import { baseConfig, env, httpConfig, loadConfig, paypalConfig } from '@billing/service-kit';

export const spec = {
  ...baseConfig,
  ...httpConfig,
  ...paypalConfig,
  PORT: env.port(3001),
  PAYPAL_WEBHOOK_ID: env.string(),
  /** Deliveries one client address may make in a minute (docs/webhooks.md); PayPal's own stay far below. */
  WEBHOOK_RATE_LIMIT_PER_MINUTE: env.int(6000, 1, 1_000_000),
};
export const loadGatewayConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;
