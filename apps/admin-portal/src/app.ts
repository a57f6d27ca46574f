import type { Runtime } from '@billing/runtime';
import { createHttpApp, type HttpApp } from '@billing/service-kit';
import type { PortalConfig } from './config.js';

/** The operators' portal and admin API (SPEC §9). */
export function buildApp({ rt }: { rt: Runtime; config: PortalConfig }): HttpApp {
  return createHttpApp({ service: rt.service, logger: rt.logger, metrics: rt.metrics, readiness: rt.readiness });
}
