import { authServiceConfig, baseConfig, checkJwt, env, httpConfig, jwtConfig, loadConfig } from '@billing/service-kit';

export const spec = {
  ...baseConfig,
  ...httpConfig,
  ...jwtConfig,
  ...authServiceConfig,
  PORT: env.port(3002),
  /** Who receipts say the money was paid to (as billing-api's). */
  SELLER_NAME: env.string('Billing platform'),
};
export const loadPortalConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source, checkJwt);
export type PortalConfig = ReturnType<typeof loadPortalConfig>;
