import { baseConfig, env, loadConfig, paypalConfig } from '@billing/service-kit';

export const spec = { ...baseConfig, ...paypalConfig, PORT: env.port(3010) };
export const loadPaymentWorkerConfig = (source: NodeJS.ProcessEnv = process.env) => loadConfig(spec, source);
export type PaymentWorkerConfig = ReturnType<typeof loadPaymentWorkerConfig>;
