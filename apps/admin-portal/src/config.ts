import { authServiceConfig, baseConfig, checkJwt, env, httpConfig, jwtConfig, loadConfig } from '@billing/service-kit';

export const spec = { ...baseConfig, ...httpConfig, ...jwtConfig, ...authServiceConfig, PORT: env.port(3002) };
export const loadPortalConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source, checkJwt);
export type PortalConfig = ReturnType<typeof loadPortalConfig>;
