import { randomUUID } from 'node:crypto';
import t from 'tap';
import { AuthClient } from '@billing/auth-client';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import type { PaymentProvider } from '@billing/payments';
import { createRuntime } from '@billing/runtime';
import { createTestVhost, hs256Token } from '@billing/testing';
import { buildApp } from '../src/app.js';
import { loadBillingApiConfig } from '../src/config.js';

// billing-api's checkout in-process (app.inject) on a real database, with an Auth client whose
// answers the test sets and a fake PaymentProvider (docs/guarantees.md: a checkout between a grant's end and the Auth revoke).
const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
const secret = 'checkout-test-secret-0123456789abcdef';
const config = loadBillingApiConfig({
  DATABASE_URL: tdb.url,
  AMQP_URL: vhost.url,
  JWT_SECRET: secret,
  AUTH_SERVICE_URL: 'http://127.0.0.1:9',
  AUTH_SERVICE_TOKEN: 'svc',
  PAYPAL_CLIENT_ID: 'id',
  PAYPAL_CLIENT_SECRET: 'secret',
  LOG_LEVEL: 'error',
});
const rt = createRuntime('billing-api-test', config);
const roles = new Map<string, string[]>();
class FakeAuth extends AuthClient {
  override async getRoles(userId: string) {
    return roles.get(userId) ?? ['user'];
  }
}
const provider = {
  name: 'fake',
  async createCheckout(input: { paymentId: string }) {
    return {
      orderId: `ORD-${input.paymentId}`,
      approvalUrl: `http://paypal.test/checkoutnow?token=ORD-${input.paymentId}`,
      status: 'PAYER_ACTION_REQUIRED',
    };
  },
} as unknown as PaymentProvider;
const app = await buildApp({
  rt,
  config,
  provider,
  auth: new FakeAuth({ baseUrl: 'http://127.0.0.1:9', serviceToken: 'svc' }),
});
t.teardown(async () => {
  await app.close();
  await rt.close();
  await tdb.drop();
  await vhost.drop();
});
await importCatalog(rt.db, [
  {
    id: 'pro',
    name: 'Pro',
    description: '',
    amount: 999,
    currency: 'USD',
    period: 'P1M',
    role: 'premium',
    active: true,
  },
]);

const token = (sub: string) => hs256Token(secret, sub);
const checkout = async (userId: string) => {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/subscriptions',
    headers: { authorization: `Bearer ${token(userId)}`, 'content-type': 'application/json' },
    payload: { planId: 'pro' },
  });
  if (res.statusCode !== 201) throw new Error(`checkout answered ${res.statusCode}: ${res.body}`);
  return rt.db
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', res.json().subscriptionId)
    .executeTakeFirstOrThrow();
};

/** A subscription of ours that granted premium and has just ended: its grant is ended, the revoke still queued. */
async function endedGrant(userId: string, settledAt: Date | null) {
  const id = randomUUID();
  await rt.db
    .insertInto('subscriptions')
    .values({
      id,
      user_id: userId,
      plan_id: 'pro',
      plan_name: 'Pro',
      role: 'premium',
      amount: 999,
      currency: 'USD',
      period: 'P1M',
      status: 'expired',
    })
    .execute();
  await rt.db
    .insertInto('role_grants')
    .values({
      id: randomUUID(),
      user_id: userId,
      role: 'premium',
      source: 'subscription',
      subscription_id: id,
      ended_at: new Date(),
      end_reason: 'expired',
      settled_at: settledAt,
    })
    .execute();
}

t.test(
  "a checkout between a grant's end and the Auth revoke does not take our role for one held before us (defect 9)",
  async (t) => {
    roles.set('held-race', ['user', 'premium']); // still there: the revoke is queued, not yet applied
    await endedGrant('held-race', null);
    const sub = await checkout('held-race');
    t.equal(sub.role_held_before, false, 'the role at the Auth service is still ours');
  },
);

t.test(
  'a role held from outside, before any grant of ours or after ours was revoked, is recorded as held before',
  async (t) => {
    roles.set('held-outside', ['user', 'premium']);
    t.equal((await checkout('held-outside')).role_held_before, true, 'never granted by us');
    roles.set('held-again', ['user', 'premium']);
    await endedGrant('held-again', new Date(Date.now() - 60_000));
    t.equal(
      (await checkout('held-again')).role_held_before,
      true,
      'our grant ended and was revoked before: this one came from elsewhere',
    );
  },
);
