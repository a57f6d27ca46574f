import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseWebhookEvent, PayPalProvider, ProviderRefusedError } from '@billing/payments';
import { createLogger } from '@billing/service-kit';
import { buildSandbox } from '../src/server.js';

// PayPal disputes (docs/disputes.md): the published samples read by the parser, the stand-in's
// disputes in the same shape, and the real SDK adapter's accept-claim and provide-evidence
// (multipart/form-data) against the stand-in over HTTP.
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));

/** The keys of a JSON object, recursively (a leaf's kind); arrays by their first item. */
function keys(v: unknown, at = ''): string[] {
  if (Array.isArray(v)) return v.length ? keys(v[0], `${at}[]`) : [];
  if (v && typeof v === 'object')
    return Object.entries(v).flatMap(([k, x]) => [`${at}.${k}`, ...keys(x, `${at}.${k}`)]);
  return [];
}

t.test('CUSTOMER.DISPUTE.CREATED as PayPal publishes it', async (t) => {
  t.same(parseWebhookEvent(fixture('customer-dispute-created.json')), {
    kind: 'dispute_changed',
    dispute: {
      disputeId: 'PP-000-042-663-135',
      captureIds: ['00D10444LD479031K'],
      amount: 300,
      currency: 'USD',
      reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
      status: 'OPEN',
      stage: 'INQUIRY',
      outcome: null,
      updatedAt: '2018-06-21T13:35:44.000Z',
    },
  });
});

t.test('a resolved dispute as PayPal publishes it (lost: RESOLVED_BUYER_FAVOUR)', async (t) => {
  // The published resource is the "show dispute details" answer; CUSTOMER.DISPUTE.RESOLVED carries it as its resource.
  const resource = fixture('dispute-resolved-resource.json');
  t.same(parseWebhookEvent({ event_type: 'CUSTOMER.DISPUTE.RESOLVED', resource_type: 'dispute', resource }), {
    kind: 'dispute_changed',
    dispute: {
      disputeId: 'PP-R-GSS-10059837',
      captureIds: ['47987518DF175504N'],
      amount: 1000,
      currency: 'EUR',
      reason: 'MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED',
      status: 'RESOLVED',
      stage: 'CHARGEBACK',
      outcome: 'RESOLVED_BUYER_FAVOUR',
      updatedAt: '2023-03-29T17:45:30.974Z',
    },
  });
});

t.test(
  'the stand-in: disputes in the published shape, refunds refused, the seller answers through the SDK',
  async (t) => {
    const { app, state, webhooks } = buildSandbox({
      clientId: 'cid',
      clientSecret: 'csecret',
      webhookId: 'WH-1',
      publicUrl: 'http://127.0.0.1:1',
      webhookUrl: undefined,
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    t.teardown(() => app.close());
    const paypal = new PayPalProvider({
      apiBase: base,
      clientId: 'cid',
      clientSecret: 'csecret',
      timeoutMs: 2_000,
      logger: createLogger({ service: 'test', level: 'error' }),
      attempts: 1,
    });
    /** A captured order of 4.99 USD through the SDK: its capture id. */
    const captured = async (paymentId: string) => {
      const order = await paypal.createCheckout({
        paymentId,
        amount: 499,
        currency: 'USD',
        description: 'Pro',
        returnUrl: 'http://shop/r',
        cancelUrl: 'http://shop/c',
        idempotencyKey: `${paymentId}:create`,
      });
      await app.inject({ method: 'POST', url: `/_control/orders/${order.orderId}/approve` });
      return (await paypal.capture({ orderId: order.orderId, idempotencyKey: `${paymentId}:capture` })).capture!.id;
    };
    const open = async (captureId: string, stage?: string) =>
      (await app.inject({ method: 'POST', url: `/_control/captures/${captureId}/dispute`, payload: { stage } })).json();
    const sentOf = (type: string, id: string) =>
      webhooks.sent.map((w) => JSON.parse(w.body)).filter((e) => e.event_type === type && e.resource.dispute_id === id);

    const captureId = await captured('33333333-3333-4333-8333-333333333333');
    const d = await open(captureId);
    const [created] = sentOf('CUSTOMER.DISPUTE.CREATED', d.dispute_id);
    const sample = fixture('customer-dispute-created.json');
    t.equal(created.resource_type, 'dispute');
    const ours = new Set(keys(created.resource));
    t.same(
      keys(sample.resource).filter((k) => !ours.has(k)),
      [],
      "every field of the published sample's resource is in the stand-in's",
    );
    t.match(parseWebhookEvent(created), {
      kind: 'dispute_changed',
      dispute: { disputeId: d.dispute_id, captureIds: [captureId], amount: 499, status: 'OPEN', stage: 'INQUIRY' },
    });

    // PayPal refuses a refund of a disputed capture.
    const refusal = await paypal
      .refund({ captureId, amount: 100, currency: 'USD', refundId: 'r-1', idempotencyKey: 'r-1' })
      .catch((e: unknown) => e);
    t.match(refusal, ProviderRefusedError);
    t.match(refusal, { status: 422, issue: 'REFUND_NOT_ALLOWED' });

    // Evidence as text goes as multipart/form-data, its JSON in the part `input`.
    const evidence = { disputeId: d.dispute_id, note: 'Used 14 times; logs attached.', idempotencyKey: 'a-1:dispute' };
    await paypal.provideDisputeEvidence(evidence);
    await paypal.provideDisputeEvidence(evidence);
    const calls = state.calls.filter((c) => c.path.endsWith('/provide-evidence'));
    t.equal(calls.length, 2);
    t.same(calls[0]!.body, { evidences: [{ evidence_type: 'OTHER', notes: 'Used 14 times; logs attached.' }] });
    t.equal(calls[0]!.requestId, 'a-1:dispute');
    t.equal(sentOf('CUSTOMER.DISPUTE.UPDATED', d.dispute_id).length, 1, 'the same request id: one update only');
    t.match(state.disputes.get(d.dispute_id), {
      status: 'UNDER_REVIEW',
      evidences: [{ evidence_type: 'OTHER', notes: 'Used 14 times; logs attached.', source: 'SUBMITTED_BY_SELLER' }],
    });

    // Settled in the seller's favour (the sandbox's adjudicate): the capture can be refunded again.
    const settle = async (id: string, outcome: string) =>
      app.inject({
        method: 'POST',
        url: `/v1/customer/disputes/${id}/adjudicate`,
        headers: { authorization: `Bearer ${[...state.tokens][0]}`, 'content-type': 'application/json' },
        payload: { adjudication_outcome: outcome },
      });
    t.equal((await settle(d.dispute_id, 'SELLER_FAVOR')).statusCode, 200);
    const [resolved] = sentOf('CUSTOMER.DISPUTE.RESOLVED', d.dispute_id);
    t.match(parseWebhookEvent(resolved), {
      dispute: { status: 'RESOLVED', outcome: 'RESOLVED_SELLER_FAVOUR' },
    });
    t.match(await paypal.refund({ captureId, amount: 100, currency: 'USD', refundId: 'r-2', idempotencyKey: 'r-2' }), {
      status: 'COMPLETED',
    });
    t.match(
      await paypal
        .acceptDisputeClaim({ disputeId: d.dispute_id, note: 'x', idempotencyKey: 'a-2:dispute' })
        .catch((e: unknown) => e),
      { status: 422 },
      'a resolved dispute offers no action',
    );

    // A chargeback's refusal names it; the claim accepted resolves it (ACCEPTED) and the buyer gets the money.
    const second = await captured('44444444-4444-4444-8444-444444444444');
    const chargeback = await open(second, 'CHARGEBACK');
    t.match(
      await paypal
        .refund({ captureId: second, amount: 100, currency: 'USD', refundId: 'r-3', idempotencyKey: 'r-3' })
        .catch((e: unknown) => e),
      { issue: 'REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK' },
    );
    await paypal.acceptDisputeClaim({
      disputeId: chargeback.dispute_id,
      note: 'Refund the buyer.',
      idempotencyKey: 'a-3',
    });
    t.match(state.calls.find((c) => c.path.endsWith('/accept-claim') && c.status === 200)?.body, {
      note: 'Refund the buyer.',
    });
    t.match(parseWebhookEvent(sentOf('CUSTOMER.DISPUTE.RESOLVED', chargeback.dispute_id)[0]), {
      dispute: { status: 'RESOLVED', outcome: 'ACCEPTED' },
    });
    t.match(state.captures.get(second)?.capture, { status: 'REFUNDED' });
    t.equal((await settle(chargeback.dispute_id, 'BUYER_FAVOR')).statusCode, 422, 'adjudicate wants UNDER_REVIEW');
  },
);
