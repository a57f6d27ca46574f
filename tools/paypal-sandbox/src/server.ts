/* eslint-disable @typescript-eslint/no-explicit-any -- request bodies are untyped JSON, checked field by field as PayPal does */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import { fromPayPalValue, toPayPalAmount } from '@billing/domain';
import { DisputeError, openDisputeOf, registerDisputes } from './disputes.js';
import { approvalPage, vaultApprovalPage } from './page.js';
import { newId, SandboxState, type Capture, type Order, type Refund, type SetupToken } from './state.js';
import { rawMember, WebhookSender } from './webhooks.js';

export interface SandboxOptions {
  clientId: string;
  clientSecret: string;
  webhookId: string;
  webhookUrl?: string;
  /** Where the stand-in is reached from outside (links, the approval page). */
  publicUrl: string;
  webhookRetryBaseMs?: number;
  webhookMaxAttempts?: number;
}

const MESSAGES: Record<number, [string, string]> = {
  400: ['INVALID_REQUEST', 'Request is not well-formed, syntactically incorrect, or violates schema.'],
  401: [
    'AUTHENTICATION_FAILURE',
    'Authentication failed due to invalid authentication credentials or a missing Authorization header.',
  ],
  404: ['RESOURCE_NOT_FOUND', 'The specified resource does not exist.'],
  415: ['UNSUPPORTED_MEDIA_TYPE', 'The request payload is not supported.'],
  422: [
    'UNPROCESSABLE_ENTITY',
    'The requested action could not be performed, semantically incorrect, or failed business validation.',
  ],
  429: ['RATE_LIMIT_REACHED', 'Too many requests. Blocked due to rate limiting.'],
  500: ['INTERNAL_SERVER_ERROR', 'An internal server error has occurred.'],
  503: ['SERVICE_UNAVAILABLE', 'Service Unavailable.'],
};

class PayPalError extends Error {
  constructor(
    readonly status: number,
    readonly issue: string,
    readonly description: string,
    readonly retryAfterS?: number,
  ) {
    super(description);
  }
}

/**
 * The declines a charge can answer with, each with the description PayPal publishes for it (Orders
 * v2 error messages; Payments v2 error pages for PAYER_CANNOT_PAY and PAYER_ACCOUNT_RESTRICTED).
 */
const DECLINE_DESCRIPTIONS: Record<string, string> = {
  INSTRUMENT_DECLINED:
    "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.",
  PAYER_CANNOT_PAY: 'Payer cannot pay for this transaction.',
  PAYER_ACCOUNT_RESTRICTED: 'Payer account is restricted.',
};

const now = () => new Date().toISOString();
const minor = (m: { currency_code: string; value: string }) => fromPayPalValue(m.value, m.currency_code);

/**
 * A local stand-in for PayPal's REST API (OAuth2, Orders v2, captures, refunds, webhook
 * verification) and its webhooks, speaking PayPal's shapes so the real SDK can be pointed at it.
 */
export function buildSandbox(opts: SandboxOptions): {
  app: FastifyInstance;
  state: SandboxState;
  webhooks: WebhookSender;
} {
  const state = new SandboxState();
  const webhooks = new WebhookSender(
    {
      url: opts.webhookUrl,
      webhookId: opts.webhookId,
      secret: `${opts.clientSecret}:webhooks`,
      publicUrl: opts.publicUrl,
      retryBaseMs: opts.webhookRetryBaseMs ?? 1_000,
      maxAttempts: opts.webhookMaxAttempts ?? 8,
    },
    () => state.behaviour,
  );
  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024, forceCloseConnections: true });
  app.register(formbody);
  // Keep raw JSON text: verify-webhook-signature must see the event exactly as sent.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, { raw: body as string, json: (body as string).length ? JSON.parse(body as string) : {} });
    } catch {
      done(new PayPalError(400, 'MALFORMED_REQUEST_JSON', 'The request JSON is not well formed.'), undefined);
    }
  });
  const json = (req: FastifyRequest) =>
    ((req.body as { json?: unknown } | undefined)?.json ?? {}) as Record<string, any>;
  const link = (path: string, rel: string, method = 'GET') => ({ href: `${opts.publicUrl}${path}`, rel, method });

  app.setErrorHandler((err: Error, req, reply) => {
    const e =
      err instanceof PayPalError
        ? err
        : err instanceof DisputeError
          ? new PayPalError(err.status, err.issue, err.description)
          : new PayPalError(500, 'INTERNAL_SERVER_ERROR', err.message);
    const [name, message] = MESSAGES[e.status] ?? MESSAGES[500]!;
    if (req.url.startsWith('/v1/oauth2'))
      return reply.status(e.status).send({ error: 'invalid_client', error_description: e.description });
    // PayPal's rate limit: RATE_LIMIT_REACHED without details, and when to come back.
    if (e.status === 429)
      return reply
        .status(429)
        .header('retry-after', String(e.retryAfterS ?? 1))
        .send({ name, message, debug_id: newId('', 13).toLowerCase() });
    return reply.status(e.status).send({
      name,
      message,
      debug_id: newId('', 13).toLowerCase(),
      details: [{ issue: e.issue, description: e.description }],
      links: [
        {
          href: `https://developer.paypal.com/api/rest/reference/orders/v2/errors/#${e.issue}`,
          rel: 'information_link',
        },
      ],
    });
  });

  // Record every API call, apply the configured failures and delays, check the bearer token.
  app.addHook('preHandler', async (req) => {
    const path = req.url.split('?')[0] ?? '';
    if (!path.startsWith('/v1/') && !path.startsWith('/v2/')) return;
    const key = `${req.method} ${path}`;
    const delay = state.behaviour.delays.find((d) => key.includes(d.match));
    if (delay) {
      state.held.set(key, (state.held.get(key) ?? 0) + 1);
      try {
        await new Promise((r) => setTimeout(r, delay.ms));
      } finally {
        const left = (state.held.get(key) ?? 1) - 1;
        if (left > 0) state.held.set(key, left);
        else state.held.delete(key);
      }
    }
    const fail = state.behaviour.failures.find((f) => f.count > 0 && key.includes(f.match));
    if (fail) {
      fail.count -= 1;
      throw new PayPalError(
        fail.status,
        fail.status >= 500 ? 'INTERNAL_SERVICE_ERROR' : 'INVALID_REQUEST',
        'a failure the test asked for',
        fail.retryAfterS,
      );
    }
    if (path === '/v1/oauth2/token') return;
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !state.tokens.has(token))
      throw new PayPalError(401, 'invalid_token', 'Token signature verification failed');
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.startsWith('/v1/') || path.startsWith('/v2/') || path.startsWith('/v3/')) {
      state.calls.push({
        at: now(),
        method: req.method,
        path,
        requestId: (req.headers['paypal-request-id'] as string | undefined) ?? null,
        prefer: (req.headers['prefer'] as string | undefined) ?? null,
        body: (req.body as { json?: unknown } | undefined)?.json ?? req.body ?? null,
        status: reply.statusCode,
      });
    }
    return payload;
  });

  /** PayPal-Request-Id: the same id replays the first successful answer. */
  async function idempotent(
    req: FastifyRequest,
    reply: FastifyReply,
    op: string,
    run: () => { status: number; body: unknown },
  ) {
    const rid = req.headers['paypal-request-id'] as string | undefined;
    const key = rid ? `${op}:${rid}` : undefined;
    const seen = key ? state.idempotent.get(key) : undefined;
    const result = seen ?? run();
    if (key && !seen && result.status < 300) state.idempotent.set(key, result);
    return reply.status(result.status).send(result.body);
  }
  const minimal = (req: FastifyRequest) => !/return=representation/.test(String(req.headers['prefer'] ?? ''));

  const orderView = (o: Order) => {
    const links = [link(`/v2/checkout/orders/${o.id}`, 'self')];
    if (o.status === 'PAYER_ACTION_REQUIRED') links.push(link(`/checkoutnow?token=${o.id}`, 'payer-action'));
    if (o.status === 'APPROVED') links.push(link(`/v2/checkout/orders/${o.id}/capture`, 'capture', 'POST'));
    const paypal = { ...o.payment_source.paypal };
    delete paypal['experience_context'];
    if (o.vault_id)
      paypal['attributes'] = {
        vault: {
          id: o.vault_id,
          status: 'VAULTED',
          customer: { id: state.vault.get(o.vault_id)?.customerId },
          links: [],
        },
      };
    return {
      id: o.id,
      intent: o.intent,
      status: o.status,
      payment_source: { paypal },
      create_time: o.create_time,
      update_time: o.update_time,
      purchase_units: o.purchase_units.map((u) => ({
        ...u,
        payments: u.payments ? { captures: u.payments.captures.map(captureView) } : undefined,
      })),
      links,
    };
  };
  const captureView = (c: Capture) => {
    const { refunded: _r, ...rest } = c;
    return rest;
  };
  const minimalView = (id: string, status: string, links: unknown[]) => ({ id, status, links });

  function captureOrder(o: Order): Capture {
    const unit = o.purchase_units[0]!;
    const perVault = o.vault_id ? (state.behaviour.declineVaults[o.vault_id] ?? 0) : 0;
    if (perVault > 0) state.behaviour.declineVaults[o.vault_id!] = perVault - 1;
    if (perVault > 0 || state.behaviour.declineCaptures > 0) {
      if (perVault <= 0) state.behaviour.declineCaptures -= 1;
      const issue = (perVault > 0 && state.behaviour.declineIssues[o.vault_id!]) || 'INSTRUMENT_DECLINED';
      throw new PayPalError(422, issue, DECLINE_DESCRIPTIONS[issue] ?? DECLINE_DESCRIPTIONS['INSTRUMENT_DECLINED']!);
    }
    const charged = minor(unit.amount) + state.behaviour.captureAmountDelta;
    const id = newId('', 17);
    const capture: Capture = {
      id,
      status: state.behaviour.capturePending ? 'PENDING' : 'COMPLETED',
      amount: toPayPalAmount(charged, unit.amount.currency_code),
      custom_id: unit.custom_id,
      final_capture: true,
      seller_protection: { status: 'ELIGIBLE' },
      create_time: now(),
      update_time: now(),
      supplementary_data: { related_ids: { order_id: o.id } },
      refunded: 0,
      links: [
        link(`/v2/payments/captures/${id}`, 'self'),
        link(`/v2/payments/captures/${id}/refund`, 'refund', 'POST'),
        link(`/v2/checkout/orders/${o.id}`, 'up'),
      ],
    };
    unit.payments = { captures: [capture] };
    state.captures.set(id, { capture, orderId: o.id });
    o.status = 'COMPLETED';
    o.update_time = now();
    if (o.store_in_vault && !o.vault_id) {
      const vaultId = newId('', 7).toLowerCase();
      o.vault_id = vaultId;
      state.vault.set(vaultId, {
        customerId: newId('', 10),
        deleted: false,
        orderId: o.id,
        ...(unit.custom_id ? { customId: unit.custom_id } : {}),
      });
      webhooks.emit(
        'VAULT.PAYMENT-TOKEN.CREATED',
        'payment_token',
        {
          id: vaultId,
          customer: { id: state.vault.get(vaultId)!.customerId },
          metadata: { order_id: o.id },
          payment_source: { paypal: {} },
          links: [],
        },
        'A payment token has been created.',
      );
    }
    webhooks.emit(
      capture.status === 'PENDING' ? 'PAYMENT.CAPTURE.PENDING' : 'PAYMENT.CAPTURE.COMPLETED',
      'capture',
      captureView(capture),
      `Payment ${capture.status === 'PENDING' ? 'pending' : 'completed'} for ${capture.amount.value} ${capture.amount.currency_code}`,
    );
    return capture;
  }

  app.post('/v1/oauth2/token', async (req) => {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = Buffer.from(basic ?? '', 'base64')
      .toString()
      .split(':');
    if (id !== opts.clientId || secret !== opts.clientSecret)
      throw new PayPalError(401, 'invalid_client', 'Client Authentication failed');
    const token = `A21AA${newId('', 40)}`;
    state.tokens.add(token);
    return {
      scope: 'https://uri.paypal.com/services/payments/payment',
      access_token: token,
      token_type: 'Bearer',
      app_id: 'APP-80W284485P519543T',
      expires_in: 32400,
      nonce: `${now()}${newId('', 10)}`,
    };
  });

  app.post('/v2/checkout/orders', async (req, reply) =>
    idempotent(req, reply, 'create', () => {
      const b = json(req);
      const unit = b['purchase_units']?.[0];
      if (b['intent'] !== 'CAPTURE' && b['intent'] !== 'AUTHORIZE')
        throw new PayPalError(400, 'INVALID_PARAMETER_VALUE', 'intent must be CAPTURE or AUTHORIZE');
      if (!unit?.amount?.currency_code || typeof unit.amount.value !== 'string')
        throw new PayPalError(400, 'MISSING_REQUIRED_PARAMETER', 'purchase_units[0].amount is required');
      try {
        minor(unit.amount);
      } catch {
        throw new PayPalError(
          422,
          'DECIMAL_PRECISION',
          'The value of the field should not have more than 2 decimal places.',
        );
      }
      const paypal = (b['payment_source']?.paypal ?? {}) as Record<string, any>;
      const o: Order = {
        id: newId('', 17),
        intent: b['intent'],
        status: 'PAYER_ACTION_REQUIRED',
        create_time: now(),
        update_time: now(),
        purchase_units: [
          {
            reference_id: unit.reference_id ?? 'default',
            custom_id: unit.custom_id,
            description: unit.description,
            amount: unit.amount,
          },
        ],
        payment_source: { paypal },
        return_url: paypal['experience_context']?.return_url,
        cancel_url: paypal['experience_context']?.cancel_url,
        store_in_vault: paypal['attributes']?.vault?.store_in_vault === 'ON_SUCCESS',
      };
      if (typeof paypal['vault_id'] === 'string') {
        const token = state.vault.get(paypal['vault_id']);
        if (!token || token.deleted)
          throw new PayPalError(422, 'INVALID_PAYMENT_SOURCE', 'The vault id is unknown or deleted.');
        o.vault_id = paypal['vault_id'];
        o.store_in_vault = false;
        captureOrder(o);
        state.orders.set(o.id, o);
        return { status: 201, body: minimal(req) ? minimalView(o.id, o.status, orderView(o).links) : orderView(o) };
      }
      state.orders.set(o.id, o);
      return { status: 200, body: minimal(req) ? minimalView(o.id, o.status, orderView(o).links) : orderView(o) };
    }),
  );

  app.get('/v2/checkout/orders/:id', async (req) => {
    const o = state.orders.get((req.params as { id: string }).id);
    if (!o)
      throw new PayPalError(
        404,
        'INVALID_RESOURCE_ID',
        'Specified resource ID does not exist. Please check the resource ID and try again.',
      );
    return orderView(o);
  });

  app.post('/v2/checkout/orders/:id/capture', async (req, reply) =>
    idempotent(req, reply, `capture:${(req.params as { id: string }).id}`, () => {
      const o = state.orders.get((req.params as { id: string }).id);
      if (!o)
        throw new PayPalError(
          404,
          'INVALID_RESOURCE_ID',
          'Specified resource ID does not exist. Please check the resource ID and try again.',
        );
      if (o.status === 'COMPLETED')
        throw new PayPalError(
          422,
          'ORDER_ALREADY_CAPTURED',
          "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
        );
      if (o.status !== 'APPROVED')
        throw new PayPalError(422, 'ORDER_NOT_APPROVED', 'Payer has not yet approved the Order for payment.');
      captureOrder(o);
      return { status: 201, body: minimal(req) ? minimalView(o.id, o.status, orderView(o).links) : orderView(o) };
    }),
  );

  app.post('/v2/payments/captures/:id/refund', async (req, reply) =>
    idempotent(req, reply, `refund:${(req.params as { id: string }).id}`, () => {
      const found = state.captures.get((req.params as { id: string }).id);
      if (!found) throw new PayPalError(404, 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.');
      const c = found.capture;
      const b = json(req);
      const total = minor(c.amount);
      const amount = b['amount'] ? minor(b['amount']) : total - c.refunded;
      if (b['amount'] && b['amount'].currency_code !== c.amount.currency_code)
        throw new PayPalError(422, 'REFUND_CURRENCY_MISMATCH', 'Refund must be in the same currency as the capture.');
      if (c.status !== 'COMPLETED' && c.status !== 'PARTIALLY_REFUNDED')
        throw new PayPalError(
          422,
          c.status === 'REFUNDED' ? 'CAPTURE_FULLY_REFUNDED' : 'REFUND_NOT_ALLOWED',
          'The capture cannot be refunded.',
        );
      // A disputed capture cannot be refunded (Payments v2's published errors).
      const disputed = openDisputeOf(state.disputes, c.id);
      if (disputed)
        throw disputed.dispute_life_cycle_stage === 'CHARGEBACK'
          ? new PayPalError(
              422,
              'REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK',
              'Refunds not allowed on this capture due to a chargeback on the card or bank. Please contact the payee to resolve the chargeback.',
            )
          : new PayPalError(422, 'REFUND_NOT_ALLOWED', 'You cannot refund this capture.');
      if (amount <= 0 || c.refunded + amount > total)
        throw new PayPalError(
          422,
          'REFUND_AMOUNT_EXCEEDED',
          'The refund amount must be less than or equal to the capture amount that has not yet been refunded.',
        );
      c.refunded += amount;
      c.status = c.refunded >= total ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
      const id = newId('', 17);
      const refund: Refund = {
        id,
        status: 'COMPLETED',
        amount: toPayPalAmount(amount, c.amount.currency_code),
        ...(b['custom_id'] ? { custom_id: b['custom_id'] } : {}),
        create_time: now(),
        update_time: now(),
        links: [link(`/v2/payments/refunds/${id}`, 'self'), link(`/v2/payments/captures/${c.id}`, 'up')],
      };
      state.refunds.set(id, refund);
      webhooks.emit(
        'PAYMENT.CAPTURE.REFUNDED',
        'refund',
        refund,
        `A ${refund.amount.value} ${refund.amount.currency_code} capture payment was refunded`,
      );
      return { status: 201, body: minimal(req) ? minimalView(id, refund.status, refund.links) : refund };
    }),
  );

  app.get('/v2/payments/captures/:id', async (req) => {
    const found = state.captures.get((req.params as { id: string }).id);
    if (!found) throw new PayPalError(404, 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.');
    return captureView(found.capture);
  });

  app.post('/v1/notifications/verify-webhook-signature', async (req) => {
    const { raw, json: b } = req.body as { raw: string; json: Record<string, string> };
    if (state.behaviour.verification === 'error')
      throw new PayPalError(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable.');
    for (const f of [
      'auth_algo',
      'cert_url',
      'transmission_id',
      'transmission_sig',
      'transmission_time',
      'webhook_id',
      'webhook_event',
    ]) {
      if (!b[f]) throw new PayPalError(400, 'MISSING_REQUIRED_PARAMETER', `${f} is required`);
    }
    const ok =
      state.behaviour.verification === 'auto' &&
      webhooks.verify({
        transmissionId: b['transmission_id']!,
        transmissionTime: b['transmission_time']!,
        transmissionSig: b['transmission_sig']!,
        webhookId: b['webhook_id']!,
        rawEvent: rawMember(raw, 'webhook_event'),
      });
    return { verification_status: ok ? 'SUCCESS' : 'FAILURE' };
  });

  // Payment Method Tokens v3 (https://developer.paypal.com/api/payment-tokens/v3): save a PayPal
  // wallet without a purchase. A setup token (PAYER_ACTION_REQUIRED, with an `approve` link), the
  // buyer's approval, then a payment token the orders API charges as a `vault_id`.
  const setupTokenView = (t: SetupToken) => ({
    id: t.id,
    customer: { id: t.customerId },
    status: t.status,
    payment_source: {
      paypal: {
        usage_type: t.usageType,
        customer_type: 'CONSUMER',
        permit_multiple_payment_tokens: false,
        ...(t.description ? { description: t.description } : {}),
        ...(t.status !== 'PAYER_ACTION_REQUIRED'
          ? { email_address: 'buyer@example.com', payer_id: 'QYR5Z8XDVJNXQ' }
          : {}),
      },
    },
    links: [
      link(`/v3/vault/setup-tokens/${t.id}`, 'self'),
      ...(t.status === 'PAYER_ACTION_REQUIRED'
        ? [{ href: `${opts.publicUrl}/agreements/approve?approval_session_id=${t.id}`, rel: 'approve', method: 'GET' }]
        : t.status === 'APPROVED'
          ? [link('/v3/vault/payment-tokens', 'confirm', 'POST')]
          : []),
    ],
  });
  app.post('/v3/vault/setup-tokens', async (req, reply) =>
    idempotent(req, reply, 'setup-token', () => {
      const b = json(req);
      const paypal = b['payment_source']?.['paypal'];
      if (!paypal || typeof paypal !== 'object')
        throw new PayPalError(
          400,
          'MISSING_REQUIRED_PARAMETER',
          'payment_source.paypal is required for a PayPal wallet',
        );
      const ctx = paypal['experience_context'] ?? {};
      if (typeof ctx['return_url'] !== 'string' || typeof ctx['cancel_url'] !== 'string')
        throw new PayPalError(
          400,
          'MISSING_REQUIRED_PARAMETER',
          'payment_source.paypal.experience_context.return_url and cancel_url are required',
        );
      const t: SetupToken = {
        id: newId('', 17),
        customerId: b['customer']?.['id'] ?? newId('', 10),
        status: 'PAYER_ACTION_REQUIRED',
        returnUrl: ctx['return_url'],
        cancelUrl: ctx['cancel_url'],
        usageType: paypal['usage_type'] ?? 'MERCHANT',
        description: typeof paypal['description'] === 'string' ? paypal['description'] : null,
      };
      state.setupTokens.set(t.id, t);
      return { status: 201, body: setupTokenView(t) };
    }),
  );
  app.get('/v3/vault/setup-tokens/:id', async (req, reply) => {
    const t = state.setupTokens.get((req.params as { id: string }).id);
    if (!t) throw new PayPalError(404, 'RESOURCE_NOT_FOUND', 'The specified resource does not exist.');
    return reply.send(setupTokenView(t));
  });
  app.post('/v3/vault/payment-tokens', async (req, reply) =>
    idempotent(req, reply, 'payment-token', () => {
      const b = json(req);
      const token = b['payment_source']?.['token'];
      if (!token || token['type'] !== 'SETUP_TOKEN' || typeof token['id'] !== 'string')
        throw new PayPalError(
          400,
          'MISSING_REQUIRED_PARAMETER',
          'payment_source.token { id, type: SETUP_TOKEN } is required',
        );
      const t = state.setupTokens.get(token['id']);
      if (!t) throw new PayPalError(404, 'RESOURCE_NOT_FOUND', 'The specified resource does not exist.');
      if (t.status === 'PAYER_ACTION_REQUIRED')
        throw new PayPalError(422, 'UNPROCESSABLE_ENTITY', 'The setup token has not been approved by the payer.');
      if (!t.paymentTokenId) {
        t.paymentTokenId = newId('', 7).toLowerCase();
        t.status = 'VAULTED';
        state.vault.set(t.paymentTokenId, { customerId: t.customerId, deleted: false, orderId: '' });
      }
      return {
        status: 201,
        body: {
          id: t.paymentTokenId,
          customer: { id: t.customerId },
          payment_source: {
            paypal: {
              usage_type: t.usageType,
              customer_type: 'CONSUMER',
              email_address: 'buyer@example.com',
              payer_id: 'QYR5Z8XDVJNXQ',
              name: { given_name: 'Sandbox', surname: 'Buyer' },
            },
          },
          links: [link(`/v3/vault/payment-tokens/${t.paymentTokenId}`, 'self')],
        },
      };
    }),
  );
  app.get('/agreements/approve', async (req, reply) => {
    const t = state.setupTokens.get(String((req.query as { approval_session_id?: string }).approval_session_id ?? ''));
    if (!t) return reply.status(404).type('text/html').send('<h1>This agreement does not exist.</h1>');
    return reply.type('text/html').send(vaultApprovalPage(t));
  });
  app.post('/agreements/approve', async (req, reply) => {
    const t = state.setupTokens.get(String((req.body as { approval_session_id?: string }).approval_session_id ?? ''));
    if (!t) return reply.status(404).type('text/html').send('<h1>This agreement does not exist.</h1>');
    if (t.status === 'PAYER_ACTION_REQUIRED') t.status = 'APPROVED';
    return reply.redirect(
      `${t.returnUrl}${t.returnUrl.includes('?') ? '&' : '?'}approval_token_id=${t.id}&approval_session_id=${t.id}`,
      303,
    );
  });
  app.post('/agreements/cancel', async (req, reply) => {
    const t = state.setupTokens.get(String((req.body as { approval_session_id?: string }).approval_session_id ?? ''));
    if (!t) return reply.status(404).type('text/html').send('<h1>This agreement does not exist.</h1>');
    return reply.redirect(
      `${t.cancelUrl}${t.cancelUrl.includes('?') ? '&' : '?'}approval_token_id=${t.id}&approval_session_id=${t.id}`,
      303,
    );
  });
  /** Approves a setup token as the buyer would (tests). */
  app.post('/_control/setup-tokens/:id/approve', async (req) => {
    const t = state.setupTokens.get((req.params as { id: string }).id);
    if (!t) throw new PayPalError(404, 'RESOURCE_NOT_FOUND', 'no such setup token');
    if (t.status === 'PAYER_ACTION_REQUIRED') t.status = 'APPROVED';
    return setupTokenView(t);
  });

  // The buyer's side: the payer-action page, with Approve and Cancel.
  app.get('/checkoutnow', async (req, reply) => {
    const o = state.orders.get(String((req.query as { token?: string }).token ?? ''));
    if (!o) return reply.status(404).type('text/html').send('<h1>This checkout does not exist.</h1>');
    return reply.type('text/html').send(approvalPage(o));
  });
  app.post('/checkoutnow/approve', async (req, reply) => {
    const o = state.orders.get(String((req.body as { token?: string }).token ?? ''));
    if (!o) return reply.status(404).type('text/html').send('<h1>This checkout does not exist.</h1>');
    approve(o);
    const payerId = newId('', 13);
    state.payerIds.add(payerId);
    return reply.redirect(
      `${o.return_url ?? opts.publicUrl}${(o.return_url ?? '').includes('?') ? '&' : '?'}token=${o.id}&PayerID=${payerId}`,
      303,
    );
  });
  app.post('/checkoutnow/cancel', async (req, reply) => {
    const o = state.orders.get(String((req.body as { token?: string }).token ?? ''));
    if (!o) return reply.status(404).type('text/html').send('<h1>This checkout does not exist.</h1>');
    return reply.redirect(
      `${o.cancel_url ?? opts.publicUrl}${(o.cancel_url ?? '').includes('?') ? '&' : '?'}token=${o.id}`,
      303,
    );
  });
  function payerAccount() {
    const id = newId('', 13);
    state.payerIds.add(id);
    return id;
  }
  function approve(o: Order) {
    if (o.status !== 'PAYER_ACTION_REQUIRED' && o.status !== 'CREATED') return;
    o.status = 'APPROVED';
    o.update_time = now();
    o.payment_source.paypal = {
      ...o.payment_source.paypal,
      email_address: 'buyer@example.com',
      account_id: payerAccount(),
      account_status: 'VERIFIED',
      name: { given_name: 'Demo', surname: 'Buyer' },
    };
    webhooks.emit('CHECKOUT.ORDER.APPROVED', 'checkout-order', orderView(o), 'An order has been approved by buyer');
  }

  // The control API: for tests and the demo, never called by the system under test.
  app.get('/_control/calls', async () => state.calls);
  // Every id that identifies a buyer or their wallet this stand-in issued (payer and account ids,
  // payment-token / vault ids, customer ids, setup-token ids): no log line may carry one.
  app.get('/_control/wallet-ids', async () => [
    ...new Set([
      ...state.payerIds,
      'QYR5Z8XDVJNXQ',
      ...state.vault.keys(),
      ...[...state.vault.values()].map((v) => v.customerId),
      ...state.setupTokens.keys(),
      ...[...state.setupTokens.values()].map((t) => t.customerId),
      ...[...state.setupTokens.values()].flatMap((t) => (t.paymentTokenId ? [t.paymentTokenId] : [])),
    ]),
  ]);
  app.get('/_control/webhooks', async () => webhooks.sent.map(({ body, ...w }) => ({ ...w, event: JSON.parse(body) })));
  // What the outside world holds: every capture (with what was refunded of it) and every refund.
  app.get('/_control/captures', async () =>
    [...state.captures.values()].map(({ capture, orderId }) => ({
      id: capture.id,
      orderId,
      status: capture.status,
      customId: capture.custom_id ?? null,
      amount: minor(capture.amount),
      currency: capture.amount.currency_code,
      refunded: capture.refunded,
    })),
  );
  app.get('/_control/refunds', async () => [...state.refunds.values()]);
  /** Calls held by a configured delay right now, one entry per call: a test can act while one is in flight. */
  app.get('/_control/held', async () => [...state.held].flatMap(([key, n]) => Array<string>(n).fill(key)));
  app.get('/_control/behaviour', async () => state.behaviour);
  app.post('/_control/behaviour', async (req) => {
    Object.assign(state.behaviour, json(req));
    return state.behaviour;
  });
  /** Delivers held events: `order` is "forward", "reverse" or a permutation of the held events' indexes. */
  app.post('/_control/webhooks/release', async (req) => {
    const order = json(req)['order'];
    return {
      released: webhooks.release(
        Array.isArray(order) ? order.map(Number) : order === 'reverse' ? 'reverse' : 'forward',
      ),
    };
  });
  app.get('/_control/webhooks/held', async () => webhooks.heldTypes());
  /** Signs events a load generator will deliver itself: `{ bodies: string[] }` → PayPal's headers for each. */
  app.post('/_control/webhooks/sign', { bodyLimit: 256 * 1024 * 1024 }, async (req) => {
    const bodies = json(req)['bodies'];
    if (!Array.isArray(bodies) || !bodies.every((b) => typeof b === 'string'))
      throw new PayPalError(400, 'INVALID_REQUEST', 'bodies must be an array of strings');
    return { headers: webhooks.signForDelivery(bodies) };
  });
  app.post('/_control/webhooks/:id/resend', async (req) => ({
    resent: webhooks.resend((req.params as { id: string }).id),
  }));
  app.post('/_control/webhook-url', async (req) => {
    webhooks.setUrl(String(json(req)['url']));
    return { ok: true };
  });
  app.post('/_control/orders/:id/approve', async (req) => {
    const o = state.orders.get((req.params as { id: string }).id);
    if (!o) throw new PayPalError(404, 'INVALID_RESOURCE_ID', 'no such order');
    approve(o);
    return orderView(o);
  });
  app.post('/_control/orders/:id/void', async (req) => {
    const o = state.orders.get((req.params as { id: string }).id);
    if (!o) throw new PayPalError(404, 'INVALID_RESOURCE_ID', 'no such order');
    o.status = 'VOIDED';
    webhooks.emit('CHECKOUT.ORDER.VOIDED', 'checkout-order', orderView(o), 'An order has been voided');
    return orderView(o);
  });
  app.post('/_control/captures/:id/reverse', async (req) => {
    const found = state.captures.get((req.params as { id: string }).id);
    if (!found) throw new PayPalError(404, 'INVALID_RESOURCE_ID', 'no such capture');
    // As PayPal publishes it: the resource is a refund (its own id, no custom_id) whose `up` link names the capture.
    const c = found.capture;
    const total = minor(c.amount);
    const amount = toPayPalAmount(total - c.refunded, c.amount.currency_code);
    c.refunded = total;
    c.status = 'REFUNDED';
    const id = newId('', 17);
    const reversal = {
      seller_payable_breakdown: {
        gross_amount: amount,
        paypal_fee: toPayPalAmount(0, c.amount.currency_code),
        net_amount: amount,
        total_refunded_amount: amount,
      },
      amount,
      update_time: now(),
      create_time: now(),
      links: [link(`/v2/payments/refunds/${id}`, 'self'), link(`/v2/payments/captures/${c.id}`, 'up')],
      id,
      note_to_payer: 'Payment reversed',
      status: 'COMPLETED',
    };
    webhooks.emit(
      'PAYMENT.CAPTURE.REVERSED',
      'refund',
      reversal,
      `A ${amount.value} ${amount.currency_code} capture payment was reversed`,
    );
    return { ok: true };
  });
  app.post('/_control/vault', async (req) => {
    const ids = (json(req)['ids'] ?? []) as string[];
    for (const id of ids) state.vault.set(id, { customerId: newId('', 10), deleted: false, orderId: '' });
    return { created: ids.length };
  });
  app.post('/_control/vault/:id/delete', async (req) => {
    const token = state.vault.get((req.params as { id: string }).id);
    if (!token) throw new PayPalError(404, 'INVALID_RESOURCE_ID', 'no such payment token');
    token.deleted = true;
    webhooks.emit(
      'VAULT.PAYMENT-TOKEN.DELETED',
      'payment_token',
      { id: (req.params as { id: string }).id },
      'A payment token has been deleted.',
    );
    return { ok: true };
  });
  app.post('/_control/reset', async () => {
    state.reset();
    return { ok: true };
  });
  registerDisputes(app, { state, webhooks, publicUrl: opts.publicUrl, json, idempotent });
  app.addHook('onClose', async () => webhooks.close());
  return { app, state, webhooks };
}
