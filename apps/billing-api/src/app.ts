import type { Runtime } from '@billing/runtime';
import { createHttpApp, type HttpApp } from '@billing/service-kit';
import type { BillingApiConfig } from './config.js';

export interface BillingApiDeps {
  rt: Runtime;
  config: BillingApiConfig;
}

/** The end users' API (SPEC §3). Never listens: `main.ts` does. */
export function buildApp({ rt }: BillingApiDeps): HttpApp {
  const app = createHttpApp({ service: rt.service, logger: rt.logger, metrics: rt.metrics, readiness: rt.readiness });
  return app;
}
