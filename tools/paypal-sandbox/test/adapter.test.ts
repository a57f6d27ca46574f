import { Writable } from 'node:stream';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { PayPalProvider, ProviderRefusedError, ProviderUnavailableError } from '@billing/payments';
import { createLogger, createMetrics } from '@billing/service-kit';
import { waitFor } from '@billing/testing';
import { buildSandbox } from '../src/server.js';

// The real SDK adapter against the stand-in, over HTTP: the production code path.
const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
const hook = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ headers: req.headers, body });
    res.writeHead(received.length === 1 ? 500 : 200).end();
  });
});
await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
const { app, state } = buildSandbox({
  clientId: 'cid',
  clientSecret: 'csecret',
  webhookId: 'WH-1',
  publicUrl: 'http://127.0.0.1:0',
  webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
  webhookRetryBaseMs: 50,
});
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const logLines: string[] = [];
const logger = createLogger({
  service: 'test',
  secrets: ['csecret'],
  stream: new Writable({
    write(c, _e, cb) {
      logLines.push(c.toString());
      cb();
    },
  }),
});
const metrics = createMetrics('test');
const paypal = new PayPalProvider({
  apiBase: base,
  clientId: 'cid',
  clientSecret: 'csecret',
  timeoutMs: 500,
  webhookId: 'WH-1',
  logger,
  attempts: 2,
  metrics,
});
/** provider_calls_total by `operation/outcome`. */
async function tries(): Promise<Record<string, number>> {
  return Object.fromEntries(
    (await metrics.providerCalls.get()).values.map((v) => [`${v.labels['operation']}/${v.labels['outcome']}`, v.value]),
  );
}
function delta(after: Record<string, number>, before: Record<string, number>) {
  return Object.fromEntries(
    Object.entries(after)
      .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
}
t.teardown(async () => {
  await app.close();
  hook.close();
});

const checkout = (paymentId: string) =>
  paypal.createCheckout({
    paymentId,
    amount: 499,
    currency: 'USD',
    description: 'Pro',
    returnUrl: 'http://shop/return',
    cancelUrl: 'http://shop/cancel',
    idempotencyKey: `${paymentId}:create`,
  });

t.test(
  'create, approve, capture with vault; the same request id replays; a second capture reads the order',
  async (t) => {
    const created = await checkout('11111111-1111-4111-8111-111111111111');
    t.equal(created.status, 'PAYER_ACTION_REQUIRED');
    t.match(created.approvalUrl, /\/checkoutnow\?token=/);
    const again = await checkout('11111111-1111-4111-8111-111111111111');
    t.equal(again.orderId, created.orderId, 'PayPal-Request-Id replays the first answer');
    const createCall = state.calls.find((c) => c.path === '/v2/checkout/orders');
    t.equal(createCall?.prefer, 'return=representation');
    t.equal(createCall?.requestId, '11111111-1111-4111-8111-111111111111:create');
    t.match(createCall?.body, {
      intent: 'CAPTURE',
      purchase_units: [
        { custom_id: '11111111-1111-4111-8111-111111111111', amount: { currency_code: 'USD', value: '4.99' } },
      ],
      payment_source: {
        paypal: {
          experience_context: {
            return_url: 'http://shop/return',
            cancel_url: 'http://shop/cancel',
            user_action: 'PAY_NOW',
          },
          attributes: { vault: { store_in_vault: 'ON_SUCCESS', usage_type: 'MERCHANT', customer_type: 'CONSUMER' } },
        },
      },
    });

    await t.rejects(
      paypal.capture({ orderId: created.orderId, idempotencyKey: 'k1' }),
      ProviderRefusedError,
      'an unapproved order is not captured',
    );
    await app.inject({ method: 'POST', url: `/_control/orders/${created.orderId}/approve` });
    const captured = await paypal.capture({ orderId: created.orderId, idempotencyKey: 'k2' });
    t.equal(captured.status, 'COMPLETED');
    t.match(captured.capture, {
      status: 'COMPLETED',
      amount: 499,
      currency: 'USD',
      customId: '11111111-1111-4111-8111-111111111111',
    });
    t.ok(captured.vaultId, 'the vault id comes with the capture');
    const second = await paypal.capture({ orderId: created.orderId, idempotencyKey: 'k3' });
    t.equal(second.capture?.id, captured.capture?.id, 'ORDER_ALREADY_CAPTURED is read as the existing capture');

    const renewal = await paypal.chargeVaulted({
      paymentId: '22222222-2222-4222-8222-222222222222',
      amount: 499,
      currency: 'USD',
      description: 'Pro renewal',
      vaultId: captured.vaultId!,
      idempotencyKey: 'r1',
    });
    t.equal(renewal.status, 'COMPLETED');
    t.equal(renewal.capture?.customId, '22222222-2222-4222-8222-222222222222');

    const refund = await paypal.refund({
      captureId: captured.capture!.id,
      amount: 100,
      currency: 'USD',
      refundId: '33333333-3333-4333-8333-333333333333',
      idempotencyKey: 'ref1',
    });
    t.equal(refund.status, 'COMPLETED');
    const refundAgain = await paypal.refund({
      captureId: captured.capture!.id,
      amount: 100,
      currency: 'USD',
      refundId: '33333333-3333-4333-8333-333333333333',
      idempotencyKey: 'ref1',
    });
    t.equal(refundAgain.id, refund.id, 'a retried refund is not a second refund');
    t.match(
      await paypal
        .refund({
          captureId: captured.capture!.id,
          amount: 1000,
          currency: 'USD',
          refundId: 'x',
          idempotencyKey: 'ref2',
        })
        .catch((e: unknown) => e),
      { name: 'ProviderRefusedError', issue: 'REFUND_AMOUNT_EXCEEDED' },
    );
  },
);

t.test('declines, 5xx and timeouts', async (t) => {
  const created = await checkout('44444444-4444-4444-8444-444444444444');
  await app.inject({ method: 'POST', url: `/_control/orders/${created.orderId}/approve` });
  const before = await tries();
  state.behaviour.declineCaptures = 1;
  t.match(await paypal.capture({ orderId: created.orderId, idempotencyKey: 'd1' }).catch((e: unknown) => e), {
    name: 'ProviderRefusedError',
    status: 422,
    issue: 'INSTRUMENT_DECLINED',
  });
  state.behaviour.failures.push({ match: 'POST /v2/checkout/orders', status: 503, count: 1 });
  const afterRetry = await checkout('55555555-5555-4555-8555-555555555555');
  t.ok(afterRetry.orderId, 'one 503 is retried with the same request id');
  state.behaviour.failures.push({ match: 'POST /v2/checkout/orders', status: 500, count: 2 });
  await t.rejects(checkout('66666666-6666-4666-8666-666666666666'), ProviderUnavailableError);
  state.behaviour.delays.push({ match: 'GET /v2/checkout/orders', ms: 800 });
  const started = Date.now();
  await t.rejects(
    paypal.getOrder(created.orderId),
    ProviderUnavailableError,
    "PAYPAL_TIMEOUT_MS applies, not the SDK's 30 s",
  );
  t.ok(Date.now() - started < 3_000);
  state.behaviour.delays = [];
  const durations = (await metrics.providerDuration.get()).values.filter(
    (v) => v.metricName === 'provider_call_duration_seconds_count',
  );
  t.same(
    delta(await tries(), before),
    { 'capture-order/refused': 1, 'create-order/failed': 3, 'create-order/ok': 1, 'get-order/failed': 2 },
    'provider_calls_total: every try counted by operation and outcome',
  );
  t.ok(durations.length > 0, 'and timed');
});

t.test(
  '429 is "try later", not a refusal: retried after Retry-After with the same request id (docs/paypal.md, retries and failures)',
  async (t) => {
    const created = await checkout('77777777-7777-4777-8777-777777777777');
    await app.inject({ method: 'POST', url: `/_control/orders/${created.orderId}/approve` });
    state.behaviour.failures.push({
      match: `POST /v2/checkout/orders/${created.orderId}/capture`,
      status: 429,
      count: 1,
      retryAfterS: 1,
    });
    const before = state.calls.length;
    const started = Date.now();
    const captured = await paypal.capture({ orderId: created.orderId, idempotencyKey: 'rl-1' });
    t.equal(captured.capture?.status, 'COMPLETED', 'captured on the second try');
    t.ok(Date.now() - started >= 900, 'waited as Retry-After asked');
    const tries = state.calls.slice(before).filter((c) => c.path.endsWith('/capture'));
    t.same(
      tries.map((c) => [c.status, c.requestId]),
      [
        [429, 'rl-1'],
        [201, 'rl-1'],
      ],
      'the same PayPal-Request-Id on the retry',
    );
    state.behaviour.failures.push({ match: 'POST /v2/checkout/orders', status: 429, count: 5, retryAfterS: 0 });
    const err = await checkout('88888888-8888-4888-8888-888888888888').catch((e: unknown) => e);
    t.type(
      err,
      ProviderUnavailableError,
      'a 429 that lasts is an unknown outcome to retry later, never a ProviderRefusedError',
    );
    state.behaviour.failures = [];
  },
);

t.test('provider answers are logged as a summary: no payer data, no vault id (docs/processes.md)', async (t) => {
  const text = logLines.join('');
  t.ok(
    logLines.some((l) => l.includes('paypal response') && l.includes('"captureStatus":"COMPLETED"')),
    'ids and statuses are logged',
  );
  for (const secret of ['email_address', 'payer_id', '"given_name"', 'surname', '"vault":{"id"'])
    t.notOk(text.includes(secret), `${secret} never logged`);
  const vaultIds = [...state.vault.keys()];
  t.ok(vaultIds.length > 0);
  t.ok(
    vaultIds.every((id) => !text.includes(id)),
    'no vault id in any line',
  );
});

t.test('webhooks: PayPal headers, retried on non-2xx, verified from the raw body only', async (t) => {
  await waitFor(() => received.some((r) => JSON.parse(r.body).event_type === 'PAYMENT.CAPTURE.REFUNDED'), {
    what: 'the refund webhook',
  });
  const first = received[0]!;
  for (const h of [
    'paypal-transmission-id',
    'paypal-transmission-time',
    'paypal-transmission-sig',
    'paypal-cert-url',
    'paypal-auth-algo',
  ])
    t.ok(first.headers[h], h);
  const firstEvent = JSON.parse(first.body).id;
  t.ok(received.filter((r) => JSON.parse(r.body).id === firstEvent).length >= 2, 'a 500 answer is retried');
  const sample = received.find((r) => JSON.parse(r.body).event_type === 'PAYMENT.CAPTURE.COMPLETED')!;
  const headers = Object.fromEntries(Object.entries(sample.headers).map(([k, v]) => [k, String(v)]));
  t.equal(await paypal.verifyWebhook({ headers, rawBody: sample.body }), true, 'the raw body verifies');
  const reserialised = JSON.stringify(JSON.parse(sample.body), null, 1);
  t.equal(await paypal.verifyWebhook({ headers, rawBody: reserialised }), false, 'a re-serialised body does not');
  t.equal(
    await paypal.verifyWebhook({ headers: { ...headers, 'paypal-transmission-sig': 'forged' }, rawBody: sample.body }),
    false,
  );
  // Events a load generator delivers itself: signed by the control API, judged like the stand-in's own.
  const copy = sample.body.replace(JSON.parse(sample.body).id, 'WH-BENCH-1');
  const signed = (await (
    await fetch(`${base}/_control/webhooks/sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bodies: [copy] }),
    })
  ).json()) as { headers: Record<string, string>[] };
  t.equal(await paypal.verifyWebhook({ headers: signed.headers[0]!, rawBody: copy }), true, 'a signed copy verifies');
  t.equal(
    await paypal.verifyWebhook({ headers: signed.headers[0]!, rawBody: copy.replace('WH-BENCH-1', 'WH-BENCH-2') }),
    false,
    'another body under its headers does not',
  );
  const refused = await fetch(`${base}/_control/webhooks/sign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bodies: 'x' }),
  });
  t.equal(refused.status, 400, 'bodies must be strings');
  state.behaviour.verification = 'error';
  await t.rejects(paypal.verifyWebhook({ headers, rawBody: sample.body }), ProviderUnavailableError);
  state.behaviour.verification = 'auto';
  const action = paypal.parseWebhook(JSON.parse(sample.body));
  t.match(action, { kind: 'capture_completed', capture: { status: 'COMPLETED', amount: 499, currency: 'USD' } });
  const refundEvent = received.find((r) => JSON.parse(r.body).event_type === 'PAYMENT.CAPTURE.REFUNDED')!;
  t.match(paypal.parseWebhook(JSON.parse(refundEvent.body)), {
    kind: 'capture_refunded',
    amount: 100,
    customId: '33333333-3333-4333-8333-333333333333',
  });
  t.ok(!logLines.join('').includes('csecret'), 'the client secret never reaches the log');
  t.ok(
    logLines.some((l) => l.includes('paypal response')),
    'provider responses are logged',
  );
});

t.test('PAYPAL_TIMEOUT_MS is a deadline for each try, not an idle timeout: a trickling answer is cut', async (t) => {
  // A PayPal that accepts the token request, then answers an order look-up one byte every 100 ms.
  const slow = http.createServer((req, res) => {
    if (req.url?.startsWith('/v1/oauth2/token')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'tok', token_type: 'Bearer', expires_in: 3600 }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    const body = JSON.stringify({ id: 'ORD-SLOW', status: 'APPROVED', pad: 'x'.repeat(200) });
    let i = 0;
    const timer = setInterval(() => {
      if (i >= body.length || res.destroyed) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(body[i++]);
    }, 100);
    req.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  t.teardown(() => slow.close());
  const trickled = new PayPalProvider({
    apiBase: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
    clientId: 'cid',
    clientSecret: 'csecret',
    timeoutMs: 400,
    logger,
    attempts: 2,
  });
  const started = Date.now();
  await t.rejects(trickled.getOrder('ORD-SLOW'), ProviderUnavailableError);
  const took = Date.now() - started;
  t.ok(took < 2_500, `two tries of at most 400 ms each, and a pause: ${took} ms (the answer alone takes over 20 s)`);
});

t.test(
  'saving a wallet without a purchase (vault v3): setup token, the buyer approves, payment token, then a charge',
  async (t) => {
    const setup = await paypal.createSetupToken({
      returnUrl: 'https://shop.example/vault/return',
      cancelUrl: 'https://shop.example/vault/cancel',
      description: 'Pro: free for 14 days, then 9.99 USD a month',
      idempotencyKey: 'setup-1',
    });
    t.equal(setup.status, 'PAYER_ACTION_REQUIRED');
    const approve = new URL(setup.approvalUrl!);
    t.equal(`${approve.pathname}${approve.search}`, `/agreements/approve?approval_session_id=${setup.setupTokenId}`);
    const again = await paypal.createSetupToken({
      returnUrl: 'https://shop.example/vault/return',
      cancelUrl: 'https://shop.example/vault/cancel',
      description: 'Pro: free for 14 days, then 9.99 USD a month',
      idempotencyKey: 'setup-1',
    });
    t.equal(again.setupTokenId, setup.setupTokenId, 'the same PayPal-Request-Id: the same setup token');
    await t.rejects(
      paypal.createPaymentToken({ setupTokenId: setup.setupTokenId, idempotencyKey: 'pt-early' }),
      ProviderRefusedError,
      'refused before the buyer approved',
    );
    t.equal((await paypal.getSetupToken(setup.setupTokenId)).status, 'PAYER_ACTION_REQUIRED', 'looked up: waiting');
    await t.rejects(paypal.getSetupToken('NO-SUCH-TOKEN'), ProviderRefusedError, 'an unknown token: 404');
    const page = await fetch(`${base}${approve.pathname}${approve.search}`);
    t.match(await page.text(), 'You are not charged now.');
    const back = await fetch(`${base}/agreements/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `approval_session_id=${setup.setupTokenId}`,
      redirect: 'manual',
    });
    t.equal(
      back.headers.get('location'),
      `https://shop.example/vault/return?approval_token_id=${setup.setupTokenId}&approval_session_id=${setup.setupTokenId}`,
    );
    t.equal((await paypal.getSetupToken(setup.setupTokenId)).status, 'APPROVED', 'looked up: approved by the buyer');
    const token = await paypal.createPaymentToken({ setupTokenId: setup.setupTokenId, idempotencyKey: 'pt-1' });
    t.ok(token.paymentTokenId);
    t.equal((await paypal.getSetupToken(setup.setupTokenId)).status, 'VAULTED', 'looked up: made into a payment token');
    t.same(
      await paypal.createPaymentToken({ setupTokenId: setup.setupTokenId, idempotencyKey: 'pt-1' }),
      token,
      'a retry gets the same payment token',
    );
    const charged = await paypal.chargeVaulted({
      paymentId: '99999999-9999-4999-8999-999999999999',
      amount: 999,
      currency: 'USD',
      description: 'Pro: first month after the trial',
      vaultId: token.paymentTokenId,
      idempotencyKey: 'trial-end-1',
    });
    t.equal(charged.capture?.status, 'COMPLETED', 'the saved wallet is charged with no buyer present');
    const calls = state.calls.filter((c) => c.path.startsWith('/v3/vault') && c.method === 'POST');
    t.equal(calls.length, 5, 'the vault calls were recorded');
    t.ok(
      calls.every((c) => c.requestId),
      'every vault call that creates carries a PayPal-Request-Id',
    );
  },
);

t.test(
  'deadlines that pass while requests wait for a socket (more calls than sockets): failed tries, no crash',
  async (t) => {
    // The SDK's error listener reads the request's socket, which is null when the request is
    // aborted before it got one: thrown inside an event listener, that would end the process.
    const fresh = new PayPalProvider({
      apiBase: base,
      clientId: 'cid',
      clientSecret: 'csecret',
      timeoutMs: 150,
      webhookId: 'WH-1',
      logger,
      attempts: 1,
      metrics: createMetrics('fresh'),
    });
    // Warm: the token is fetched and cached. On a busy machine a try can outlast the 150 ms deadline
    // (token plus order); such a try is an unknown outcome and is simply made again.
    let warm: unknown;
    for (let i = 0; i < 20; i++) {
      warm = await fresh.getOrder('5O190127TN364715T').catch((e: unknown) => e);
      if (!(warm instanceof ProviderUnavailableError)) break;
    }
    t.type(warm, ProviderRefusedError, 'warm: the token is cached (an unknown order is refused)');
    state.behaviour.delays.push({ match: 'GET /v2/checkout/orders', ms: 400 });
    t.teardown(() => void (state.behaviour.delays = []));
    // 64 sockets per provider: the calls past them wait in the agent, without a socket, until the deadline.
    const results = await Promise.allSettled(Array.from({ length: 80 }, () => fresh.getOrder('5O190127TN364715T')));
    t.same(
      results.filter((r) => r.status === 'rejected' && r.reason instanceof ProviderUnavailableError).length,
      80,
      'each an unknown outcome',
    );
    await new Promise((r) => setTimeout(r, 500));
    t.pass('no uncaught exception');
  },
);
