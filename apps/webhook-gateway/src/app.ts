import type { Runtime } from '@billing/runtime';
import { createHttpApp, type HttpApp } from '@billing/service-kit';
import type { GatewayConfig } from './config.js';

/** SPEC §4: PayPal's callbacks are up to 1 MiB. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export function buildApp({ rt }: { rt: Runtime; config: GatewayConfig }): HttpApp {
  return createHttpApp({ service: rt.service, logger: rt.logger, metrics: rt.metrics, readiness: rt.readiness, bodyLimit: WEBHOOK_BODY_LIMIT });
}
