import type { AuthClient } from '@billing/auth-client';
import type { HttpApp } from '@billing/service-kit';
import { authPages } from './auth.js';
import { couponPages } from './coupons.js';
import { deadLetterPages } from './dead-letters.js';
import { disputePages } from './disputes.js';
import { homePages } from './home.js';
import { makeKit } from './kit.js';
import { paymentPages } from './payments.js';
import { pausePages } from './pauses.js';
import { planPages } from './plans.js';
import { revenuePages } from './revenue.js';
import { subscriptionPages } from './subscriptions.js';
import { userPages } from './users.js';

/** docs/admin.md's pages: server-rendered, signed in through the Auth service, forms carrying a CSRF token. */
export function adminPages(app: HttpApp, { auth }: { auth: AuthClient }): void {
  const kit = makeKit(app);
  authPages(kit, { auth });
  homePages(kit);
  paymentPages(kit);
  disputePages(kit);
  subscriptionPages(kit);
  pausePages(kit);
  userPages(kit);
  planPages(kit);
  deadLetterPages(kit);
  couponPages(kit);
  revenuePages(kit);
}
