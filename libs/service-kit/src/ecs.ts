/**
 * Log lines as Elastic Common Schema documents, for the Elasticsearch transport. stdout keeps
 * its flat JSON lines; what goes to Elasticsearch is reshaped here so that Kibana's own log
 * views and the index template (`deploy/elk/index-template.json`) find the usual fields:
 * `@timestamp`, `log.level`, `service.name`, `trace.id` (our correlation id), `user.id`,
 * `error.*`, `http.*`, `url.*`, `event.duration`. Our own identifiers keep names of their own
 * (`payment.id`, `subscription.id`, `refund.id`, `paypal.*`), and a PayPal call's request and
 * response summary lands under `provider.*`. Whatever else a line carries goes to `billing`, a
 * `flattened` field: searchable, never a mapping explosion.
 *
 * Lines arrive already redacted (the logger's own format runs first).
 */

/** The data stream the apps write to; the index template matches `logs-billing-*`. */
export const LOG_DATA_STREAM = 'logs-billing-default';
/** The ECS version the documents and the template follow. */
export const ECS_VERSION = '8.11.0';

export interface WinstonLogData {
  message: unknown;
  level: string;
  timestamp?: string;
  meta: Record<string, unknown>;
}

type Doc = Record<string, unknown>;

function put(doc: Doc, path: string, value: unknown): void {
  if (value === undefined || value === null || value === '') return;
  const keys = path.split('.');
  let at = doc;
  for (const k of keys.slice(0, -1)) {
    const next = at[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) at[k] = {};
    at = at[k] as Doc;
  }
  at[keys[keys.length - 1] as string] = value;
}

const text = (v: unknown): string | undefined =>
  v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v);

/** Our log keys with an ECS (or our own, stable) field of their own. */
const FIELD_OF: Record<string, string> = {
  userId: 'user.id',
  paymentId: 'payment.id',
  subscriptionId: 'subscription.id',
  refundId: 'refund.id',
  planId: 'plan.id',
  orderId: 'paypal.order_id',
  captureId: 'paypal.capture_id',
  eventId: 'event.id',
  eventType: 'event.action',
  messageId: 'message_bus.message_id',
  queue: 'message_bus.queue',
  job: 'job.name',
  method: 'http.request.method',
  route: 'http.route',
  url: 'url.original',
};

/** Keys of a PayPal call's line (libs/payments' adapter) that describe the call itself. */
const PROVIDER_FIELD_OF: Record<string, string> = {
  op: 'provider.operation',
  requestId: 'provider.request_id',
  attempt: 'provider.attempt',
  status: 'provider.status_code',
  issue: 'provider.issue',
  detail: 'provider.detail',
  waitMs: 'provider.wait_ms',
};

function errorFields(doc: Doc, err: unknown): void {
  if (err instanceof Error) {
    put(doc, 'error.type', err.name);
    put(doc, 'error.message', err.message);
    put(doc, 'error.stack_trace', err.stack);
  } else if (typeof err === 'object' && err !== null) {
    const e = err as Record<string, unknown>;
    put(doc, 'error.type', text(e['name']));
    put(doc, 'error.message', text(e['message']) ?? text(err));
    put(doc, 'error.stack_trace', text(e['stack']));
  } else {
    put(doc, 'error.message', text(err));
  }
}

/** winston-elasticsearch's `transformer`: one winston line in, one ECS document out. */
export function toEcsDocument({ message, level, timestamp, meta }: WinstonLogData): Doc {
  const doc: Doc = {
    '@timestamp': timestamp ?? new Date().toISOString(),
    message: text(message) ?? '',
    ecs: { version: ECS_VERSION },
  };
  put(doc, 'log.level', level);
  const rest: Doc = {};
  // A provider's call (libs/payments' PayPal adapter) says so with `provider: 'paypal'`.
  const provider = typeof meta['provider'] === 'string';
  for (const [key, value] of Object.entries(meta)) {
    if (value === undefined) continue;
    if (key === 'service') put(doc, 'service.name', value);
    else if (provider && key === 'provider') put(doc, 'provider.name', value);
    else if (key === 'correlationId') put(doc, 'trace.id', value);
    else if (key === 'timestamp') continue;
    else if (key === 'err' || key === 'error') errorFields(doc, value);
    else if (key === 'ms' && typeof value === 'number') put(doc, 'event.duration', Math.round(value * 1e6));
    else if (provider && key === 'summary') put(doc, 'provider.response', value);
    else if (provider && key in PROVIDER_FIELD_OF) put(doc, PROVIDER_FIELD_OF[key] as string, value);
    else if (!provider && key === 'status' && typeof value === 'number') put(doc, 'http.response.status_code', value);
    else if (key in FIELD_OF) put(doc, FIELD_OF[key] as string, typeof value === 'string' ? value : text(value));
    else rest[key] = value;
  }
  if (Object.keys(rest).length > 0) doc['billing'] = rest;
  return doc;
}
