import { randomUUID } from 'node:crypto';
import t from 'tap';
import { createMigratedTestDb } from '@billing/db/testing';
import type { PaymentProvider } from '@billing/payments';
import { createRuntime } from '@billing/runtime';
import { createTestVhost, waitFor } from '@billing/testing';
import { buildApp } from '../src/app.js';
import { loadGatewayConfig } from '../src/config.js';

// docs/webhooks.md, a flood: the gateway bounds the deliveries it holds (503 with Retry-After past
// the bound, which PayPal redelivers) and refuses, without asking PayPal, a delivery whose
// transmission time is stale or whose certificate is not PayPal's.
const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
const config = loadGatewayConfig({
  DATABASE_URL: tdb.url,
  AMQP_URL: vhost.url,
  PAYPAL_API_BASE: 'https://api-m.sandbox.paypal.com',
  PAYPAL_CLIENT_ID: 'id',
  PAYPAL_CLIENT_SECRET: 'secret',
  PAYPAL_WEBHOOK_ID: 'WH-1',
  WEBHOOK_MAX_PENDING: '4',
  LOG_LEVEL: 'error',
});
const rt = createRuntime('gateway-flood-test', config);
let asked = 0;
let release: () => void = () => {};
let gate = Promise.resolve();
const provider = {
  name: 'fake',
  async verifyWebhook() {
    asked += 1;
    await gate;
    return true;
  },
} as unknown as PaymentProvider;
const app = await buildApp({ rt, config, provider });
t.teardown(async () => {
  await app.close();
  await rt.close();
  await tdb.drop();
  await vhost.drop();
});

const delivery = (over: Record<string, string> = {}) => {
  const raw = JSON.stringify({
    id: `WH-${randomUUID()}`,
    event_type: 'PAYMENT.CAPTURE.COMPLETED',
    resource_type: 'capture',
    resource: { id: 'CAP-1', status: 'COMPLETED', padding: 'x'.repeat(15_000) },
  });
  return app.inject({
    method: 'POST',
    url: '/webhooks/paypal',
    payload: raw,
    headers: {
      'content-type': 'application/json',
      'paypal-transmission-id': randomUUID(),
      'paypal-transmission-time': new Date().toISOString(),
      'paypal-transmission-sig': 'sig',
      'paypal-cert-url': 'https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1',
      'paypal-auth-algo': 'SHA256withRSA',
      ...over,
    },
  });
};

t.test('past WEBHOOK_MAX_PENDING deliveries held, the next ones get 503 with Retry-After', async (t) => {
  gate = new Promise<void>((r) => (release = r));
  asked = 0;
  const first = Array.from({ length: 4 }, () => delivery());
  await waitFor(() => asked === 4, { what: 'four verifications held at PayPal' });
  const more = await Promise.all(Array.from({ length: 20 }, () => delivery()));
  t.same(
    more.map((r) => r.statusCode),
    Array(20).fill(503),
    'the twenty beyond the bound are refused at once',
  );
  t.ok(Number(more[0]!.headers['retry-after']) > 0, 'with Retry-After');
  t.equal(asked, 4, 'PayPal was asked about the held ones only');
  release();
  t.same(
    (await Promise.all(first)).map((r) => r.statusCode),
    [200, 200, 200, 200],
  );
  t.equal((await delivery()).statusCode, 200, 'once they are done, deliveries are taken again');
});

t.test("PayPal's cheap local checks come before the verify call", async (t) => {
  gate = Promise.resolve();
  asked = 0;
  const old = await delivery({ 'paypal-transmission-time': new Date(Date.now() - 2 * 3_600_000).toISOString() });
  t.equal(old.statusCode, 401, 'a transmission two hours old');
  const future = await delivery({ 'paypal-transmission-time': new Date(Date.now() + 3_600_000).toISOString() });
  t.equal(future.statusCode, 401, 'a transmission an hour ahead');
  t.equal((await delivery({ 'paypal-transmission-time': 'yesterday' })).statusCode, 400, 'no date at all');
  for (const url of [
    'https://evil.example/cert.pem',
    'http://api.paypal.com/v1/notifications/certs/CERT-1',
    'https://api.paypal.com.evil.example/cert.pem',
    'https://api.paypal.com@evil.example/cert.pem',
  ])
    t.equal((await delivery({ 'paypal-cert-url': url })).statusCode, 401, `cert URL ${url}`);
  t.equal(asked, 0, 'PayPal was never asked');
  t.equal((await delivery()).statusCode, 200, 'a fresh delivery with PayPal’s certificate is verified');
  t.equal(asked, 1);
});
