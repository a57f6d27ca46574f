// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ambient types for the SDK, which ships none
/// <reference path="./sdk.d.ts" />
import http from 'node:http';
import https from 'node:https';
import sdk, { type HttpRequest, type HttpResponse } from '@paypal/checkout-server-sdk';
import paypalhttp from '@paypal/paypalhttp';
import { toPayPalAmount } from '@billing/domain';
import type { Logger, Metrics } from '@billing/service-kit';
import {
  ProviderRefusedError,
  ProviderUnavailableError,
  type ChargeVaultedInput,
  type CheckoutCreated,
  type CreateCheckoutInput,
  type DisputeActionInput,
  type OrderState,
  type PaymentProvider,
  type PaymentTokenState,
  type RefundInput,
  type RefundState,
  type SetupTokenInput,
  type SetupTokenState,
  type WebhookAction,
} from '../provider.js';
import { parseOrder, parsePaymentToken, parseSetupToken, parseWebhookEvent } from './parse.js';

export interface PayPalOptions {
  apiBase: string;
  clientId: string;
  clientSecret: string;
  timeoutMs: number;
  /** The webhook id PayPal signs with (webhook-gateway only). */
  webhookId?: string;
  logger: Logger;
  /** Tries of one call on an unknown outcome (timeout, network, 5xx), all with the same request id. */
  attempts?: number;
  /** The longest one call may take over all its tries (a try already running is not cut). */
  budgetMs?: number;
  /** `provider_calls_total` and `provider_call_duration_seconds`, one count per try. */
  metrics?: Pick<Metrics, 'providerCalls' | 'providerDuration'>;
}

/** The environment's PayPal settings (service-kit's `paypalConfig`). */
export interface PayPalEnv {
  PAYPAL_API_BASE: string;
  PAYPAL_CLIENT_ID: string;
  PAYPAL_CLIENT_SECRET: string;
  PAYPAL_TIMEOUT_MS: number;
}

/** The PayPal adapter as an app builds it from its configuration, with what else it needs. */
export function payPalFromEnv(
  env: PayPalEnv,
  rest: Omit<PayPalOptions, 'apiBase' | 'clientId' | 'clientSecret' | 'timeoutMs'>,
): PayPalProvider {
  return new PayPalProvider({
    apiBase: env.PAYPAL_API_BASE,
    clientId: env.PAYPAL_CLIENT_ID,
    clientSecret: env.PAYPAL_CLIENT_SECRET,
    timeoutMs: env.PAYPAL_TIMEOUT_MS,
    ...rest,
  });
}

/** Statuses that mean "try later", not a refusal (docs/paypal.md). */
const TRY_LATER = new Set([408, 429]);
const MAX_RETRY_AFTER_MS = 5_000;

function retryAfterMs(v: string | string[] | undefined): number | null {
  const text = Array.isArray(v) ? v[0] : v;
  if (!text) return null;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/**
 * What of a PayPal answer is logged (docs/processes.md): ids, statuses, amounts, issue and debug id;
 * never the payer (e-mail, name, payer id, address) or a vault / payment-token id.
 */
export function summarise(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object') return {};
  type Node = { [k: string]: Node | undefined } & Node[];
  const b = body as Node;
  const unit = b['purchase_units']?.[0];
  const capture = unit?.['payments']?.['captures']?.[0];
  const vault = b['payment_source']?.['paypal']?.['attributes']?.['vault'];
  const out: Record<string, unknown> = {
    id: b['id'],
    status: b['status'],
    amount: b['amount'] ?? unit?.['amount'],
    customId: b['custom_id'] ?? unit?.['custom_id'],
    captureId: capture?.['id'],
    captureStatus: capture?.['status'],
    captureAmount: capture?.['amount'],
    vaultStatus: vault?.['status'],
    verificationStatus: b['verification_status'],
    name: b['name'],
    debugId: b['debug_id'],
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/** PayPal's vault v3 calls: the ids in their answers (setup token, payment token, customer) name a wallet. */
const VAULT_OPERATIONS = new Set(['create-setup-token', 'get-setup-token', 'create-payment-token']);

/** What of a vault v3 answer is logged: its status only, never an id (docs/processes.md). */
export function summariseVault(body: unknown): Record<string, unknown> {
  const status = (body as { status?: unknown } | null)?.status;
  return status === undefined ? {} : { status };
}

/** A JSON body sent exactly as given (the raw webhook inside verify-webhook-signature). */
class RawJson {
  constructor(readonly text: string) {}
}

/** PayPal-Request-Id: at most 108 characters, derived from our ids, the same on every retry. */
export function requestId(key: string): string {
  return key.length <= 108 ? key : key.slice(0, 108);
}

function issueOf(body: string): { issue: string | null; message: string } {
  try {
    const j = JSON.parse(body) as {
      name?: string;
      message?: string;
      details?: { issue?: string; description?: string }[];
    };
    return {
      issue: j.details?.[0]?.issue ?? j.name ?? null,
      message: j.details?.[0]?.description ?? j.message ?? body.slice(0, 300),
    };
  } catch {
    return { issue: null, message: body.slice(0, 300) };
  }
}

/**
 * The PayPal adapter on @paypal/checkout-server-sdk, pointed at PAYPAL_API_BASE (a local
 * stand-in in tests): OAuth2 token cached by the SDK, `Prefer: return=representation` on
 * create/capture/refund, `PayPal-Request-Id` on each, PAYPAL_TIMEOUT_MS instead of 30 s.
 */
/** The one purchase unit of an order: our payment's id on both of PayPal's reference fields. */
const purchaseUnit = (input: { paymentId: string; description: string; amount: number; currency: string }) => ({
  reference_id: input.paymentId,
  custom_id: input.paymentId,
  description: input.description.slice(0, 127),
  amount: toPayPalAmount(input.amount, input.currency),
});

export class PayPalProvider implements PaymentProvider {
  readonly name = 'paypal';
  private readonly client: InstanceType<typeof sdk.core.PayPalHttpClient>;
  private readonly attempts: number;
  private readonly budgetMs: number;
  private readonly agent: http.Agent;

  constructor(private readonly opts: PayPalOptions) {
    this.agent = opts.apiBase.startsWith('https:')
      ? new https.Agent({ keepAlive: true, maxSockets: 64 })
      : new http.Agent({ keepAlive: true, maxSockets: 64 });
    const env = new sdk.core.PayPalEnvironment(
      opts.clientId,
      opts.clientSecret,
      opts.apiBase.replace(/\/+$/, ''),
      opts.apiBase,
    );
    const timeoutMs = opts.timeoutMs;
    class Client extends sdk.core.PayPalHttpClient {
      override getTimeout() {
        return timeoutMs;
      }
    }
    this.client = new Client(env);
    const json = this.client.encoder._encoders[0]!;
    const encode = json.encode.bind(json);
    json.encode = (req) => (req.body instanceof RawJson ? req.body.text : encode(req));
    this.attempts = opts.attempts ?? 3;
    this.budgetMs = opts.budgetMs ?? Math.max(2 * opts.timeoutMs, 8_000);
  }

  private count(op: string, outcome: string, started: number): void {
    const m = this.opts.metrics;
    if (!m) return;
    const labels = { provider: 'paypal', operation: op, outcome };
    m.providerCalls.inc(labels);
    m.providerDuration.observe(labels, (Date.now() - started) / 1000);
  }

  private async call<T>(
    op: string,
    request: HttpRequest,
    context: Record<string, unknown> = {},
  ): Promise<HttpResponse<T>> {
    const { logger } = this.opts;
    const first = Date.now();
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      try {
        const res = await this.withDeadline(request, () => this.client.execute<T>(request));
        this.count(op, 'ok', started);
        logger.info('paypal response', {
          provider: 'paypal',
          op,
          ...context,
          attempt,
          status: res.statusCode,
          ms: Date.now() - started,
          requestId: request.headers['PayPal-Request-Id'],
          summary: VAULT_OPERATIONS.has(op) ? summariseVault(res.result) : summarise(res.result),
        });
        return res;
      } catch (err) {
        const e = err as {
          statusCode?: number;
          message?: string;
          headers?: Record<string, string | string[] | undefined>;
        };
        this.count(
          op,
          e.statusCode && TRY_LATER.has(e.statusCode)
            ? 'try_later'
            : e.statusCode && e.statusCode >= 400 && e.statusCode < 500
              ? 'refused'
              : 'failed',
          started,
        );
        if (e.statusCode && TRY_LATER.has(e.statusCode)) {
          // Not a refusal: PayPal says "try later" (docs/paypal.md). Wait as it asks, within bounds, with the same request id.
          const { issue } = issueOf(e.message ?? '');
          const waitMs = Math.min(
            retryAfterMs(e.headers?.['retry-after']) ?? 500 * 2 ** (attempt - 1),
            MAX_RETRY_AFTER_MS,
          );
          logger.warn('paypal asks to try later', {
            provider: 'paypal',
            op,
            ...context,
            attempt,
            status: e.statusCode,
            issue,
            waitMs,
            requestId: request.headers['PayPal-Request-Id'],
          });
          if (attempt >= this.attempts || Date.now() - first + waitMs > this.budgetMs) {
            throw new ProviderUnavailableError(
              `PayPal ${op}: HTTP ${e.statusCode} ${issue ?? ''} after ${attempt} tries`.trim(),
            );
          }
          await new Promise((r) => setTimeout(r, waitMs));
          continue;
        }
        if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
          const { issue, message } = issueOf(e.message ?? '');
          logger.warn('paypal refused', {
            provider: 'paypal',
            requestId: request.headers['PayPal-Request-Id'],
            op,
            ...context,
            attempt,
            status: e.statusCode,
            issue,
            detail: message,
            ms: Date.now() - started,
          });
          throw new ProviderRefusedError(
            e.statusCode,
            issue,
            `PayPal ${op}: ${e.statusCode} ${issue ?? ''} ${message}`.trim(),
          );
        }
        logger.warn('paypal call failed', {
          provider: 'paypal',
          requestId: request.headers['PayPal-Request-Id'],
          op,
          ...context,
          attempt,
          status: e.statusCode ?? null,
          error: e.message?.slice(0, 300),
          ms: Date.now() - started,
        });
        // Tries are bounded in number and in total time, so a stopping worker is never held past its grace.
        if (attempt >= this.attempts || Date.now() - first + this.opts.timeoutMs > this.budgetMs) {
          throw new ProviderUnavailableError(
            `PayPal ${op}: ${e.statusCode ? `HTTP ${e.statusCode}` : (e.message ?? 'no answer')} after ${attempt} tries`,
          );
        }
        await new Promise((r) => setTimeout(r, 200 * 3 ** (attempt - 1)));
      }
    }
  }

  /**
   * PAYPAL_TIMEOUT_MS as a deadline for the whole try: the SDK's own timeout is an idle timeout, so
   * an answer trickling a byte at a time would hold the call for ever. At the deadline the request
   * is destroyed (its socket closed) and the try fails as an unknown outcome, retried with the same id.
   * Never before the request has its socket: the SDK's error listener reads the socket and would
   * throw (a crash) on a request ended while it waited for one, e.g. queued behind 64 busy sockets.
   */
  private async withDeadline<R>(request: HttpRequest, run: () => Promise<R>): Promise<R> {
    const shared = this.agent;
    let sent: http.ClientRequest | undefined;
    let hasSocket = false;
    let expired = false;
    const gone = () => new Error(`no complete answer within ${this.opts.timeoutMs} ms`);
    // The SDK hands the request object to http.request as its options: the agent (one per call,
    // over the shared one that keeps connections to PayPal open) shows us the request it makes.
    const agent = Object.create(shared) as http.Agent & { addRequest(r: http.ClientRequest, o: unknown): void };
    agent.addRequest = (r: http.ClientRequest, options: unknown) => {
      if (expired) throw gone(); // the deadline passed before the request was made: it is not sent
      sent = r;
      r.once('socket', () => (hasSocket = true)); // before the SDK's own listener
      (shared as unknown as { addRequest(r: http.ClientRequest, o: unknown): void }).addRequest(r, options);
    };
    Object.assign(request as HttpRequest & { agent?: http.Agent }, { agent });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        const r = sent;
        if (r && hasSocket) r.destroy(gone());
        else if (r) r.once('socket', () => setImmediate(() => r.destroy(gone())));
        reject(gone());
      }, this.opts.timeoutMs);
    });
    try {
      return await Promise.race([run(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async createCheckout(input: CreateCheckoutInput): Promise<CheckoutCreated> {
    const req = new sdk.orders.OrdersCreateRequest().prefer('return=representation').requestBody({
      intent: 'CAPTURE',
      purchase_units: [purchaseUnit(input)],
      payment_source: {
        paypal: {
          experience_context: {
            return_url: input.returnUrl,
            cancel_url: input.cancelUrl,
            user_action: 'PAY_NOW',
            shipping_preference: 'NO_SHIPPING',
          },
          attributes: { vault: { store_in_vault: 'ON_SUCCESS', usage_type: 'MERCHANT', customer_type: 'CONSUMER' } },
        },
      },
    });
    req.headers['PayPal-Request-Id'] = requestId(input.idempotencyKey);
    const res = await this.call<{ id: string; status: string; links?: { rel: string; href: string }[] }>(
      'create-order',
      req,
      { paymentId: input.paymentId },
    );
    const link =
      res.result.links?.find((l) => l.rel === 'payer-action') ?? res.result.links?.find((l) => l.rel === 'approve');
    if (!link) throw new ProviderRefusedError(422, 'NO_APPROVAL_LINK', 'PayPal returned no payer-action link');
    return { orderId: res.result.id, approvalUrl: link.href, status: res.result.status };
  }

  async capture({ orderId, idempotencyKey }: { orderId: string; idempotencyKey: string }): Promise<OrderState> {
    const req = new sdk.orders.OrdersCaptureRequest(orderId)
      .prefer('return=representation')
      .payPalRequestId(requestId(idempotencyKey))
      .requestBody({});
    try {
      return parseOrder((await this.call('capture-order', req, { orderId })).result);
    } catch (err) {
      // A capture exists already (ours, by an earlier try): read the order and go on from it.
      if (err instanceof ProviderRefusedError && err.issue === 'ORDER_ALREADY_CAPTURED') return this.getOrder(orderId);
      throw err;
    }
  }

  async chargeVaulted(input: ChargeVaultedInput): Promise<OrderState> {
    const req = new sdk.orders.OrdersCreateRequest().prefer('return=representation').requestBody({
      intent: 'CAPTURE',
      purchase_units: [purchaseUnit(input)],
      payment_source: { paypal: { vault_id: input.vaultId } },
    });
    req.headers['PayPal-Request-Id'] = requestId(input.idempotencyKey);
    const order = parseOrder((await this.call('charge-vaulted', req, { paymentId: input.paymentId })).result);
    if (order.status === 'APPROVED' && !order.capture)
      return this.capture({ orderId: order.orderId, idempotencyKey: `${input.idempotencyKey}:capture` });
    return order;
  }

  async refund(input: RefundInput): Promise<RefundState> {
    const req = new sdk.payments.CapturesRefundRequest(input.captureId)
      .prefer('return=representation')
      .payPalRequestId(requestId(input.idempotencyKey))
      .requestBody({ amount: toPayPalAmount(input.amount, input.currency), custom_id: input.refundId });
    const res = await this.call<{ id: string; status: string }>('refund-capture', req, {
      captureId: input.captureId,
      refundId: input.refundId,
    });
    return { id: res.result.id, status: res.result.status, amount: input.amount, currency: input.currency };
  }

  async getOrder(orderId: string): Promise<OrderState> {
    return parseOrder((await this.call('get-order', new sdk.orders.OrdersGetRequest(orderId), { orderId })).result);
  }

  async verifyWebhook({
    headers,
    rawBody,
  }: {
    headers: Record<string, string | undefined>;
    rawBody: string;
  }): Promise<boolean> {
    const h = (name: string) => JSON.stringify(headers[name.toLowerCase()] ?? '');
    const text =
      `{"auth_algo":${h('PAYPAL-AUTH-ALGO')},"cert_url":${h('PAYPAL-CERT-URL')},"transmission_id":${h('PAYPAL-TRANSMISSION-ID')},` +
      `"transmission_sig":${h('PAYPAL-TRANSMISSION-SIG')},"transmission_time":${h('PAYPAL-TRANSMISSION-TIME')},` +
      `"webhook_id":${JSON.stringify(this.opts.webhookId ?? '')},"webhook_event":${rawBody}}`;
    const req: HttpRequest = {
      path: '/v1/notifications/verify-webhook-signature',
      verb: 'POST',
      body: new RawJson(text),
      headers: { 'Content-Type': 'application/json' },
    };
    try {
      const res = await this.call<{ verification_status?: string }>('verify-webhook-signature', req);
      return res.result.verification_status === 'SUCCESS';
    } catch (err) {
      if (err instanceof ProviderRefusedError) return false;
      throw err;
    }
  }

  parseWebhook(event: unknown): WebhookAction {
    return parseWebhookEvent(event);
  }

  async createSetupToken(input: SetupTokenInput): Promise<SetupTokenState> {
    // Payment Method Tokens v3: the SDK has no request class for it; its client sends any request.
    const req: HttpRequest = {
      path: '/v3/vault/setup-tokens',
      verb: 'POST',
      body: {
        payment_source: {
          paypal: {
            description: input.description.slice(0, 127),
            usage_type: 'MERCHANT',
            customer_type: 'CONSUMER',
            permit_multiple_payment_tokens: false,
            experience_context: {
              return_url: input.returnUrl,
              cancel_url: input.cancelUrl,
              shipping_preference: 'NO_SHIPPING',
              vault_instruction: 'ON_PAYER_APPROVAL',
            },
          },
        },
      },
      headers: { 'Content-Type': 'application/json', 'PayPal-Request-Id': requestId(input.idempotencyKey) },
    };
    const token = parseSetupToken((await this.call('create-setup-token', req)).result);
    if (!token.setupTokenId) throw new ProviderUnavailableError('PayPal create-setup-token: no id in the answer');
    return token;
  }

  async getSetupToken(setupTokenId: string): Promise<SetupTokenState> {
    const req: HttpRequest = {
      path: `/v3/vault/setup-tokens/${encodeURIComponent(setupTokenId)}`,
      verb: 'GET',
      headers: { 'Content-Type': 'application/json' },
    };
    return parseSetupToken((await this.call('get-setup-token', req)).result);
  }

  async createPaymentToken(input: { setupTokenId: string; idempotencyKey: string }): Promise<PaymentTokenState> {
    const req: HttpRequest = {
      path: '/v3/vault/payment-tokens',
      verb: 'POST',
      body: { payment_source: { token: { id: input.setupTokenId, type: 'SETUP_TOKEN' } } },
      headers: { 'Content-Type': 'application/json', 'PayPal-Request-Id': requestId(input.idempotencyKey) },
    };
    const token = parsePaymentToken((await this.call('create-payment-token', req)).result);
    if (!token.paymentTokenId) throw new ProviderUnavailableError('PayPal create-payment-token: no id in the answer');
    return token;
  }

  async acceptDisputeClaim(input: DisputeActionInput): Promise<void> {
    const req: HttpRequest = {
      path: `/v1/customer/disputes/${encodeURIComponent(input.disputeId)}/accept-claim`,
      verb: 'POST',
      body: { note: input.note.slice(0, 2000) },
      headers: { 'Content-Type': 'application/json', 'PayPal-Request-Id': requestId(input.idempotencyKey) },
    };
    await this.call('accept-claim', req, { disputeId: input.disputeId });
  }

  async provideDisputeEvidence(input: DisputeActionInput): Promise<void> {
    // Disputes v1 takes evidence only as multipart/form-data: its JSON goes in the part `input`.
    const evidence = { evidences: [{ evidence_type: 'OTHER', notes: input.note.slice(0, 2000) }] };
    const req: HttpRequest = {
      path: `/v1/customer/disputes/${encodeURIComponent(input.disputeId)}/provide-evidence`,
      verb: 'POST',
      body: { input: new paypalhttp.FormPart(evidence, { 'Content-Type': 'application/json' }) },
      headers: { 'Content-Type': 'multipart/form-data', 'PayPal-Request-Id': requestId(input.idempotencyKey) },
    };
    await this.call('provide-evidence', req, { disputeId: input.disputeId });
  }
}
