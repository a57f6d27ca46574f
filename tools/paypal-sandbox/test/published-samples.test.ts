import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseOrder, parsePaymentToken, parseSetupToken, parseWebhookEvent, summarise } from '@billing/payments';
import { buildSandbox } from '../src/server.js';

// PayPal's published webhook samples, kept as fixtures: the parser reads them, and the
// stand-in sends events of the same shape (docs/webhooks.md: the chargeback).
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));

/** The shape of a JSON value: its keys, recursively, and the kinds of its leaves. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, shape((v as Record<string, unknown>)[k])]),
    );
  return typeof v;
}

t.test('PAYMENT.CAPTURE.REVERSED as PayPal publishes it: a refund naming the capture by its up link', async (t) => {
  const sample = fixture('payment-capture-reversed.json');
  t.same(parseWebhookEvent(sample), {
    kind: 'capture_reversed',
    captureId: '4L335234718889942',
    refundId: '09E71677NS257044M',
    amount: 251,
    currency: 'USD',
  });
});

t.test('the stand-in sends PAYMENT.CAPTURE.REVERSED in the published shape', async (t) => {
  const { app, state, webhooks } = buildSandbox({
    clientId: 'cid',
    clientSecret: 'csecret',
    webhookId: 'WH-1',
    publicUrl: 'http://127.0.0.1:1',
    webhookUrl: undefined,
  });
  t.teardown(() => app.close());
  const token = (
    await app.inject({
      method: 'POST',
      url: '/v1/oauth2/token',
      headers: {
        authorization: `Basic ${Buffer.from('cid:csecret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: 'grant_type=client_credentials',
    })
  ).json().access_token;
  const auth = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    prefer: 'return=representation',
  };
  const order = (
    await app.inject({
      method: 'POST',
      url: '/v2/checkout/orders',
      headers: auth,
      payload: {
        intent: 'CAPTURE',
        purchase_units: [{ custom_id: 'pay-1', amount: { currency_code: 'USD', value: '2.51' } }],
        payment_source: { paypal: { experience_context: { return_url: 'http://r', cancel_url: 'http://c' } } },
      },
    })
  ).json();
  await app.inject({ method: 'POST', url: `/_control/orders/${order.id}/approve` });
  const captured = (
    await app.inject({ method: 'POST', url: `/v2/checkout/orders/${order.id}/capture`, headers: auth, payload: {} })
  ).json();
  const captureId = captured.purchase_units[0].payments.captures[0].id as string;
  t.ok(state.captures.has(captureId));
  await app.inject({ method: 'POST', url: `/_control/captures/${captureId}/reverse` });
  const sent = JSON.parse(webhooks.sent.find((w) => w.eventType === 'PAYMENT.CAPTURE.REVERSED')!.body);
  const sample = fixture('payment-capture-reversed.json');
  t.equal(sent.resource_type, sample.resource_type, 'resource_type "refund"');
  t.same(shape(sent.resource), shape(sample.resource), "the resource has exactly the sample's fields");
  t.notOk('custom_id' in sent.resource, 'no custom_id, as in the sample');
  t.same(parseWebhookEvent(sent), {
    kind: 'capture_reversed',
    captureId,
    refundId: sent.resource.id,
    amount: 251,
    currency: 'USD',
  });
});

t.test(
  "a captured order as PayPal's docs publish it (save a PayPal wallet during purchase) is logged as a summary only",
  async (t) => {
    // The sample answer of "capture payment for order" with the wallet vaulted (developer.paypal.com,
    // Orders v2 save-payment-methods and checkout samples), kept as a fixture.
    const sample = fixture('order-captured-with-vault.json');
    const summary = summarise(sample);
    t.same(summary, {
      id: '5O190127TN364715T',
      status: 'COMPLETED',
      customId: '0b6f1f8e-3c1a-4d7e-9a2b-5c6d7e8f9a0b',
      captureId: '3C679366HH908993F',
      captureStatus: 'COMPLETED',
      captureAmount: { currency_code: 'USD', value: '100.00' },
      vaultStatus: 'VAULTED',
    });
    const text = JSON.stringify(summary);
    for (const personal of [
      'customer@example.com',
      'QYR5Z8XDVJNXQ',
      'Firstname',
      'Lastname',
      '123 Main St',
      'Anytown',
      'nkq2y9g',
      'ROaTm6ILqj',
    ])
      t.notOk(text.includes(personal), `no ${personal} in the summary`);
  },
);

t.test('the same sample parses: the capture, the vault id for renewals', async (t) => {
  const order = parseOrder(fixture('order-captured-with-vault.json'));
  t.match(order, { orderId: '5O190127TN364715T', status: 'COMPLETED', vaultId: 'nkq2y9g' });
  t.match(order.capture, { id: '3C679366HH908993F', status: 'COMPLETED', amount: 10000, currency: 'USD' });
});

t.test(
  "Payment Method Tokens v3 as PayPal publishes them: the setup token's approve link, the payment token's id",
  async (t) => {
    t.same(parseSetupToken(fixture('setup-token-created.json')), {
      setupTokenId: '85186205RL0794831',
      status: 'PAYER_ACTION_REQUIRED',
      approvalUrl: 'https://sandbox.paypal.com/agreements/approve?approval_session_id=85186205RL0794831',
    });
    t.same(parsePaymentToken(fixture('payment-token-created.json')), {
      paymentTokenId: '8kk8451t',
      customerId: 'customer_4029352050',
    });
  },
);

t.test('the stand-in answers setup and payment tokens in the published shapes', async (t) => {
  const { app } = buildSandbox({
    clientId: 'cid',
    clientSecret: 'csecret',
    webhookId: 'WH-1',
    publicUrl: 'http://127.0.0.1:1',
    webhookUrl: undefined,
  });
  t.teardown(() => app.close());
  const auth = `Basic ${Buffer.from('cid:csecret').toString('base64')}`;
  const token = (
    await app.inject({
      method: 'POST',
      url: '/v1/oauth2/token',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials',
    })
  ).json().access_token;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const created = await app.inject({
    method: 'POST',
    url: '/v3/vault/setup-tokens',
    headers,
    payload: {
      payment_source: {
        paypal: {
          usage_type: 'MERCHANT',
          experience_context: { return_url: 'https://shop/r', cancel_url: 'https://shop/c' },
        },
      },
    },
  });
  t.equal(created.statusCode, 201);
  const published = fixture('setup-token-created.json');
  const ours = created.json();
  for (const key of ['id', 'customer', 'status', 'payment_source', 'links'])
    t.ok(key in ours, `has ${key}, as published`);
  t.same(shape(ours.links[1]), shape({ href: '', rel: '', method: '' }), 'links as { href, rel, method }');
  t.equal(ours.status, published.status);
  t.same(
    ours.links.map((l: { rel: string }) => l.rel),
    published.links.map((l: { rel: string }) => l.rel),
    'self and approve, as published',
  );
  const early = await app.inject({
    method: 'POST',
    url: '/v3/vault/payment-tokens',
    headers,
    payload: { payment_source: { token: { id: ours.id, type: 'SETUP_TOKEN' } } },
  });
  t.equal(early.statusCode, 422, 'not before the payer approved');
  const approved = await app.inject({
    method: 'POST',
    url: '/agreements/approve',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `approval_session_id=${ours.id}`,
  });
  t.equal(approved.statusCode, 303);
  t.equal(approved.headers.location, `https://shop/r?approval_token_id=${ours.id}&approval_session_id=${ours.id}`);
  const pt = await app.inject({
    method: 'POST',
    url: '/v3/vault/payment-tokens',
    headers,
    payload: { payment_source: { token: { id: ours.id, type: 'SETUP_TOKEN' } } },
  });
  t.equal(pt.statusCode, 201);
  const ptPublished = fixture('payment-token-created.json');
  t.same(
    Object.keys(pt.json()).sort(),
    Object.keys(ptPublished)
      .filter((k) => k !== '_source')
      .sort(),
    'the published keys',
  );
  t.match(parsePaymentToken(pt.json()).paymentTokenId, /^[a-z0-9]{7}$/);
});
