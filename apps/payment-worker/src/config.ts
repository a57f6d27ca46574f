import { baseConfig, env, loadConfig, paypalConfig } from '@billing/service-kit';

/** DUNNING_RETRY_MS: what a failed renewal's next try is (the scheduler runs it). */
export const spec = {
  ...baseConfig,
  ...paypalConfig,
  PORT: env.port(3010),
  DUNNING_RETRY_MS: env.msList('86400000,259200000,432000000'),
  /** billing-api's public address: receipt links in `payment.completed` point there. */
  PUBLIC_BASE_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:3000'),
  /** docs/api.md, recovery links: signs the links in the messages that ask the buyer to act; unset: none. */
  RECOVERY_LINK_SECRET: env.optionalSecret(32),
};
export const loadPaymentWorkerConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type PaymentWorkerConfig = ReturnType<typeof loadPaymentWorkerConfig>;
