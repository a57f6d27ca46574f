import type { BillingApiDeps } from '../../app.js';
import type { Catalogue } from '../../catalogue.js';
import type { HttpApp } from '@billing/service-kit';
import { lifecycleRoutes } from './lifecycle.js';
import { retentionRoutes } from './retention.js';
import { paymentMethodRoutes } from './payment-method.js';
import { planChangeRoutes } from './plan-change.js';
import { purchaseRoutes } from './purchase.js';
import { readRoutes } from './read.js';

/**
 * The end users' subscription routes (docs/api.md), one file per concern; each decides, calls
 * billing-core's use case (docs/architecture.md, use cases) and PayPal, and answers.
 */
export function subscriptionRoutes(
  app: HttpApp,
  deps: BillingApiDeps,
  catalogue: { read(): Promise<Catalogue> },
): void {
  purchaseRoutes(app, deps, catalogue);
  readRoutes(app, deps);
  lifecycleRoutes(app, deps);
  retentionRoutes(app, deps);
  planChangeRoutes(app, deps, catalogue);
  paymentMethodRoutes(app, deps);
}
