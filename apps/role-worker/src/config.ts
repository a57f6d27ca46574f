import { authServiceConfig, baseConfig, env, loadConfig } from '@billing/service-kit';

export const spec = { ...baseConfig, ...authServiceConfig, PORT: env.port(3011) };
export const loadRoleWorkerConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type RoleWorkerConfig = ReturnType<typeof loadRoleWorkerConfig>;
