import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuthClient } from '@billing/auth-client';
import type { Runtime } from '@billing/runtime';
import type { HttpApp } from '@billing/service-kit';
import { requireAdmin } from '../admin.js';
import { auditApi } from './audit.js';
import { couponsApi } from './coupons.js';
import { deadLettersApi } from './dead-letters.js';
import { disputesApi } from './disputes.js';
import { paymentsApi } from './payments.js';
import { plansApi } from './plans.js';
import { subscriptionsApi } from './subscriptions.js';
import { statsApi } from './stats.js';
import { revenueApi } from './revenue.js';
import { usersApi } from './users.js';

export interface AdminDeps {
  rt: Runtime;
  auth: AuthClient;
  /** SELLER_NAME: who receipts say was paid. */
  sellerName: string;
}
export type AdminPlugin = FastifyPluginAsyncTypebox<AdminDeps>;

export const ADMIN_API_PREFIX = '/admin/api/v1';

/**
 * docs/admin.md's admin API, JSON for scripts (the pages call the same operations): one plugin per
 * resource under one prefix, behind one hook: a bearer token with the admin role (never the
 * portal's cookie, so no form on another site can drive it).
 */
export async function adminApi(app: HttpApp, deps: AdminDeps): Promise<void> {
  await app.register(
    async (api) => {
      api.addHook('onRequest', requireAdmin(app.authenticate));
      // JSON only: the pages' form parser does not reach the API (a form on another site cannot post to it).
      api.removeContentTypeParser('application/x-www-form-urlencoded');
      for (const plugin of [
        plansApi,
        paymentsApi,
        subscriptionsApi,
        usersApi,
        deadLettersApi,
        auditApi,
        statsApi,
        revenueApi,
        couponsApi,
        disputesApi,
      ]) {
        await api.register(plugin, deps);
      }
    },
    { prefix: ADMIN_API_PREFIX },
  );
}
