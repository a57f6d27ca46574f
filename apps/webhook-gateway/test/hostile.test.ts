import { createHash, randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { createMigratedTestDb } from '@billing/db/testing';
import { ProviderUnavailableError, type PaymentProvider } from '@billing/payments';
import { createRuntime } from '@billing/runtime';
import { createTestVhost } from '@billing/testing';
import { buildApp } from '../src/app.js';
import { loadGatewayConfig } from '../src/config.js';

// Hostile inputs against the webhook-gateway in-process (app.inject) on a real database: each
// gets a clear 4xx (or 503 when PayPal cannot judge), nothing is stored, and the gateway goes on
// serving. PayPal's verdict comes from a fake provider that counts how often it is asked.
const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
const config = loadGatewayConfig({
  DATABASE_URL: tdb.url,
  AMQP_URL: vhost.url,
  PAYPAL_API_BASE: 'https://api-m.sandbox.paypal.com',
  PAYPAL_CLIENT_ID: 'id',
  PAYPAL_CLIENT_SECRET: 'secret',
  PAYPAL_WEBHOOK_ID: 'WH-1',
  WEBHOOK_RATE_LIMIT_PER_MINUTE: '600',
  LOG_LEVEL: 'error',
});
const rt = createRuntime('gateway-hostile-test', config);
let verifications = 0;
let verifierDown = false;
/**
 * A signature is genuine when it is "good:" + the body's hash and the certificate is on PayPal's
 * hosts: what PayPal's verify-webhook-signature would say of its own deliveries (it fetches the
 * certificate from cert_url and answers FAILURE for one it does not issue).
 */
const signatureOf = (raw: string) => `good:${createHash('sha256').update(raw).digest('hex')}`;
const provider = {
  name: 'fake',
  async verifyWebhook({ headers, rawBody }: { headers: Record<string, string>; rawBody: string }) {
    verifications += 1;
    if (verifierDown) throw new ProviderUnavailableError('PayPal verify-webhook-signature: 503');
    const cert = new URL(headers['paypal-cert-url'] ?? '', 'invalid:/');
    const paypalCert = cert.protocol === 'https:' && /(^|\.)paypal\.com$/.test(cert.hostname) && !cert.username;
    return paypalCert && headers['paypal-transmission-sig'] === signatureOf(rawBody);
  },
} as unknown as PaymentProvider;
const app = await buildApp({ rt, config, provider });
t.teardown(async () => {
  await app.close();
  await rt.close();
  await tdb.drop();
  await vhost.drop();
});

const event = (over: Record<string, unknown> = {}) => ({
  id: `WH-${randomUUID()}`,
  event_type: 'PAYMENT.CAPTURE.COMPLETED',
  resource_type: 'capture',
  resource: { id: 'CAP-1', status: 'COMPLETED' },
  create_time: '2026-11-28T06:00:00Z',
  ...over,
});
function headersFor(raw: string, over: Record<string, string | string[] | undefined> = {}) {
  const h: Record<string, string | string[] | undefined> = {
    'content-type': 'application/json',
    'paypal-transmission-id': randomUUID(),
    'paypal-transmission-time': new Date().toISOString(),
    'paypal-transmission-sig': signatureOf(raw),
    'paypal-cert-url': 'https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1',
    'paypal-auth-algo': 'SHA256withRSA',
    ...over,
  };
  return Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string | string[]>;
}
async function post(raw: string, headers: Record<string, string | string[]>) {
  const res = await app.inject({ method: 'POST', url: '/webhooks/paypal', headers, payload: raw });
  return { status: res.statusCode, body: res.body ? (res.json() as any) : null };
}
const stored = async () =>
  Number(
    (
      await tdb.db
        .selectFrom('provider_events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

const results: [string, number, string][] = [];
async function hostile(
  t: Test,
  what: string,
  raw: string,
  headers: Record<string, string | string[]>,
  status: number,
  type?: string,
) {
  const before = await stored();
  const res = await post(raw, headers);
  t.equal(res.status, status, what);
  if (type) t.equal(res.body?.type, `/problems/${type}`, `${what}: ${type}`);
  t.equal(await stored(), before, `${what}: nothing stored`);
  results.push([what, res.status, res.body?.type ?? '']);
}

t.test('bodies: too large, not JSON, not an object, poisoned, without id or type, of another media type', async (t) => {
  const big = JSON.stringify(event({ resource: { pad: 'x'.repeat(1024 * 1024) } }));
  await hostile(t, 'a body over 1 MiB', big, headersFor(big), 413, 'payload-too-large');
  for (const [what, raw] of [
    ['malformed JSON', '{"id": "WH-1", '],
    ['a JSON array', '[1,2,3]'],
    ['a JSON string', '"hello"'],
    ['null', 'null'],
    ['a __proto__ key', '{"id":"WH-P","event_type":"X","__proto__":{"admin":true}}'],
    ['a constructor key', '{"id":"WH-C","event_type":"X","resource":{"constructor":{"prototype":{}}}}'],
    ['no id', JSON.stringify({ event_type: 'X' })],
    ['a numeric id', JSON.stringify({ id: 12, event_type: 'X' })],
    ['an id of 201 characters', JSON.stringify({ id: 'W'.repeat(201), event_type: 'X' })],
    ['no event_type', JSON.stringify({ id: 'WH-NT' })],
    ['an empty event_type', JSON.stringify({ id: 'WH-ET', event_type: '' })],
    ['an empty body', ''],
    ['a body of whitespace', '   '],
  ] as const) {
    await hostile(t, what, raw, headersFor(raw), 400, 'validation');
  }
  const raw = JSON.stringify(event());
  await hostile(t, 'text/plain', raw, headersFor(raw, { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
  await hostile(
    t,
    'a form-encoded body',
    'id=1',
    headersFor('id=1', { 'content-type': 'application/x-www-form-urlencoded' }),
    415,
    'unsupported-media-type',
  );
});

t.test("PayPal's headers: each missing, each given twice, a certificate URL off PayPal's hosts", async (t) => {
  const raw = JSON.stringify(event());
  for (const h of [
    'paypal-transmission-id',
    'paypal-transmission-time',
    'paypal-transmission-sig',
    'paypal-cert-url',
    'paypal-auth-algo',
  ]) {
    await hostile(t, `${h} missing`, raw, headersFor(raw, { [h]: undefined }), 400, 'validation');
    const twice = headersFor(raw);
    twice[h] = [String(twice[h]), String(twice[h])];
    await hostile(t, `${h} twice`, raw, twice, 400, 'validation');
  }
  for (const url of [
    'http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1',
    'https://evil.example/cert.pem',
    'https://paypal.com.evil.example/cert.pem',
    'https://evilpaypal.com/cert.pem',
    'file:///etc/passwd',
    'not a url',
    'https://api.paypal.com.evil.example/cert.pem',
    'https://api.paypal.com@evil.example/cert.pem',
  ]) {
    await hostile(t, `cert URL ${url}`, raw, headersFor(raw, { 'paypal-cert-url': url }), 401, 'unauthorized');
  }
  // (headers over 16 KiB are refused by Node's HTTP parser before the app: 431, tested over a real socket in tools/e2e)
});

t.test(
  'forgeries and replays: PayPal is asked once per delivery; an event id reused with another body changes nothing',
  async (t) => {
    const raw = JSON.stringify(event());
    const forged = headersFor(raw, { 'paypal-transmission-sig': 'forged' });
    const asked = verifications;
    await hostile(t, 'a forged signature', raw, forged, 401, 'unauthorized');
    await hostile(t, 'the same forgery replayed', raw, forged, 401, 'unauthorized');
    t.equal(verifications - asked, 1, 'PayPal was asked about the forgery once');
    const genuine = headersFor(raw);
    const first = await post(raw, genuine);
    t.same(first, { status: 200, body: { status: 'accepted', duplicate: false } });
    const count = await stored();
    const replay = await post(raw, genuine);
    t.same(replay.body, { status: 'accepted', duplicate: true }, 'a replayed delivery: 200, a duplicate');
    t.equal(await stored(), count);
    results.push(['a genuine delivery replayed (same transmission id)', replay.status, 'duplicate']);
    const id = JSON.parse(raw).id as string;
    const other = JSON.stringify(event({ id, event_type: 'PAYMENT.CAPTURE.REVERSED' }));
    await hostile(
      t,
      'an event id reused with another body, signed for the first',
      other,
      headersFor(other, { 'paypal-transmission-sig': signatureOf(raw) }),
      401,
      'unauthorized',
    );
    const resigned = await post(other, headersFor(other));
    t.same(resigned.body, { status: 'accepted', duplicate: true }, 'even one PayPal vouches for: the first body stays');
    const row = await tdb.db
      .selectFrom('provider_events')
      .selectAll()
      .where('provider_event_id', '=', id)
      .executeTakeFirstOrThrow();
    t.equal(row.event_type, 'PAYMENT.CAPTURE.COMPLETED');
    results.push(['an event id reused with another body, signed', resigned.status, 'duplicate, unchanged']);
  },
);

t.test('PayPal unable to judge: 503, nothing stored, delivered again later', async (t) => {
  verifierDown = true;
  const raw = JSON.stringify(event());
  await hostile(t, 'verification unavailable', raw, headersFor(raw), 503, 'signature-check-unavailable');
  verifierDown = false;
  t.equal((await post(raw, headersFor(raw))).status, 200, 'the next delivery is judged afresh and stored');
});

t.test('a flood from one client: 429 past 600 a minute; the gateway still serves', async (t) => {
  const raw = JSON.stringify(event());
  const h = headersFor(raw, { 'paypal-transmission-sig': 'forged' });
  let last = 0;
  for (let i = 0; i < 650 && last !== 429; i++) last = (await post(raw, h)).status;
  t.equal(last, 429);
  results.push(['a flood of 600+ requests a minute from one client', last, 'rate-limited']);
  const health = await app.inject({ url: '/health/live' });
  t.equal(health.statusCode, 200, 'still serving');
});

t.test('the table', async (t) => {
  t.ok(results.length >= 40, `${results.length} hostile inputs`);
  t.comment(results.map(([w, s, ty]) => `${s} ${ty.replace('/problems/', '')} · ${w}`).join('\n'));
});
