import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { AuthClient } from '@billing/auth-client';
import type { PaymentProvider } from '@billing/payments';
import type { Runtime } from '@billing/runtime';
import { createHttpApp, jwtAuth, registerRateLimits, trustProxyOf, type HttpApp } from '@billing/service-kit';
import type { BillingApiConfig } from './config.js';
import { billingPageRoutes } from './routes/billing-page.js';
import { checkoutRoutes } from './routes/checkout.js';
import { paymentRoutes } from './routes/payments.js';
import { createCatalogue } from './catalogue.js';
import { plansRoutes } from './routes/plans.js';
import { subscriptionRoutes } from './routes/subscriptions/index.js';

export interface BillingApiDeps {
  rt: Runtime;
  config: BillingApiConfig;
  provider: PaymentProvider;
  auth: AuthClient;
}

/** The end users' API (docs/api.md). Never listens: `main.ts` does. */
export async function buildApp(deps: BillingApiDeps): Promise<HttpApp> {
  const { rt, config } = deps;
  const app = createHttpApp({
    service: rt.service,
    logger: rt.logger,
    metrics: rt.metrics,
    readiness: rt.readiness,
    trustProxy: trustProxyOf(config.TRUST_PROXY),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Billing API',
        version: '1.0.0',
        description:
          'Subscription billing for end users (docs/api.md). Errors are application/problem+json; money is integer minor units.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    hideUntagged: true,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(jwtAuth, config);
  await registerRateLimits(app);
  const catalogue = createCatalogue(app, deps.rt);
  plansRoutes(app, catalogue);
  subscriptionRoutes(app, deps, catalogue);
  paymentRoutes(app, deps);
  checkoutRoutes(app, deps);
  billingPageRoutes(app);
  return app;
}
