import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import type { AuthClient } from '@billing/auth-client';
import type { Runtime } from '@billing/runtime';
import { createHttpApp, jwtAuth, registerRateLimits, trustProxyOf, type HttpApp } from '@billing/service-kit';
import { COOKIE } from './admin.js';
import type { PortalConfig } from './config.js';
import { adminApi } from './api/index.js';
import { adminPages } from './pages/index.js';

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
  const app = createHttpApp({
    service: rt.service,
    logger: rt.logger,
    metrics: rt.metrics,
    readiness: rt.readiness,
    trustProxy: trustProxyOf(config.TRUST_PROXY),
  });
  // Security headers on every answer: no framing, no sniffing, only our own resources (docs/admin.md).
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        // The stylesheet and the time-zone script are files of our own (/assets): nothing inline.
        styleSrc: ["'self'"],
        scriptSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    strictTransportSecurity: false,
  });
  await app.register(cookie);
  await app.register(formbody);
  // `secure: 'auto'`: Secure whenever the request came over https (behind a proxy: TRUST_PROXY).
  await app.register(csrf, {
    cookieOpts: { httpOnly: true, sameSite: 'strict', path: '/', signed: false, secure: 'auto' },
  });
  await app.register(jwtAuth, { ...config, cookieName: COOKIE });
  await registerRateLimits(app);
  await adminApi(app, { rt, auth, sellerName: config.SELLER_NAME });
  adminPages(app, { auth });
  return app;
}
