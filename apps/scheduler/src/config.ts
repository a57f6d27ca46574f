import { baseConfig, env, loadConfig } from '@billing/service-kit';

export const spec = {
  ...baseConfig,
  PORT: env.port(3012),
  CHECKOUT_TTL_MS: env.int(10_800_000, 1),
  SCHEDULER_INTERVAL_MS: env.int(60_000, 10, 86_400_000),
  RENEWAL_LEAD_MS: env.int(86_400_000, 0),
  DUNNING_RETRY_MS: env.msList('86400000,259200000,432000000'),
  RECONCILE_AFTER_MS: env.int(900_000, 1),
};
export const loadSchedulerConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type SchedulerConfig = ReturnType<typeof loadSchedulerConfig>;
