import { baseConfig, env, httpConfig, loadConfig, paypalConfig } from '@billing/service-kit';

export const spec = {
  ...baseConfig,
  ...httpConfig,
  ...paypalConfig,
  PORT: env.port(3001),
  PAYPAL_WEBHOOK_ID: env.string(),
  /** Deliveries one client address may make in a minute (docs/webhooks.md); PayPal's own stay far below. */
  WEBHOOK_RATE_LIMIT_PER_MINUTE: env.int(60_000, 1, 1_000_000),
  /** Deliveries held at once (body read, PayPal asked, stored); past it 503 with Retry-After (docs/webhooks.md). */
  WEBHOOK_MAX_PENDING: env.int(256, 1, 100_000),
  /** How far PAYPAL-TRANSMISSION-TIME may be from our clock, either way, before a delivery is refused unasked. */
  WEBHOOK_TRANSMISSION_TOLERANCE_MS: env.int(15 * 60_000, 1_000, 7 * 24 * 3_600_000),
};
export const loadGatewayConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;
