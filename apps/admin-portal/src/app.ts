import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import type { AuthClient } from '@billing/auth-client';
import type { Runtime } from '@billing/runtime';
import { createHttpApp, jwtAuth, type HttpApp } from '@billing/service-kit';
import { COOKIE } from './admin.js';
import type { PortalConfig } from './config.js';
import { adminApi } from './api/index.js';
import { adminPages } from './routes/pages.js';

/** The operators' portal and admin API (docs/admin.md). */
export async function buildApp({
  rt,
  config,
  auth,
}: {
  rt: Runtime;
  config: PortalConfig;
  auth: AuthClient;
}): Promise<HttpApp> {
  const app = createHttpApp({ service: rt.service, logger: rt.logger, metrics: rt.metrics, readiness: rt.readiness });
  await app.register(cookie);
  await app.register(formbody);
  await app.register(csrf, { cookieOpts: { httpOnly: true, sameSite: 'strict', path: '/', signed: false } });
  await app.register(jwtAuth, { ...config, cookieName: COOKIE });
  await adminApi(app, { rt, auth });
  adminPages(app, { auth });
  return app;
}
