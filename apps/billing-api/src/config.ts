import {
  authServiceConfig,
  baseConfig,
  httpConfig,
  checkJwt,
  env,
  jwtConfig,
  loadConfig,
  paypalConfig,
} from '@billing/service-kit';

export const spec = {
  ...baseConfig,
  ...httpConfig,
  ...jwtConfig,
  ...authServiceConfig,
  ...paypalConfig,
  PORT: env.port(3000),
  PUBLIC_BASE_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:3000'),
  /** docs/api.md, recovery links: verifies the links the payment-worker signs; unset: none accepted. */
  RECOVERY_LINK_SECRET: env.optionalSecret(32),
  APP_HOME_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:3000/billing'),
  /** Who receipts say the money was paid to. */
  SELLER_NAME: env.string('Billing platform'),
};
export const loadBillingApiConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source, checkJwt);
export type BillingApiConfig = ReturnType<typeof loadBillingApiConfig>;
