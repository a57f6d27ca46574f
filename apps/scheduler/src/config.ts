import { isValidPeriod } from '@billing/domain';
import { baseConfig, env, loadConfig, type VarSpec } from '@billing/service-kit';

/** An ISO 8601 duration of one unit (`P7D`, `P15D`, `PT30S`), as plans' periods are written. */
const duration = (fallback: string): VarSpec<string> => ({
  parse(raw) {
    const value = raw?.trim() || fallback;
    if (!isValidPeriod(value))
      throw new Error(`must be an ISO 8601 duration such as P7D or PT30S, got "${value.slice(0, 40)}"`);
    return value;
  },
});

export const spec = {
  ...baseConfig,
  PORT: env.port(3012),
  CHECKOUT_TTL_MS: env.int(10_800_000, 1),
  SCHEDULER_INTERVAL_MS: env.int(60_000, 10, 86_400_000),
  RENEWAL_LEAD_MS: env.int(86_400_000, 0),
  DUNNING_RETRY_MS: env.msList('86400000,259200000,432000000'),
  RECONCILE_AFTER_MS: env.int(900_000, 1),
  RENEWAL_REMINDER_LEAD: duration('P7D'),
  RENEWAL_REMINDER_LEAD_YEARLY: duration('P15D'),
};
export const loadSchedulerConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type SchedulerConfig = ReturnType<typeof loadSchedulerConfig>;
