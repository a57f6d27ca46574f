import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { ReadinessSchema, type Readiness } from '@billing/contracts';
import { acceptCorrelationId, runWithCorrelation } from './context.js';
import { AppError, problemBody } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export type HttpApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What readiness checks: docs/processes.md names Postgres and RabbitMQ. */
export interface ReadinessChecks {
  postgres: () => Promise<boolean>;
  rabbitmq: () => Promise<boolean> | boolean;
}

export interface HttpBaseOptions {
  service: string;
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessChecks;
  /** docs/api.md: 16 KiB for end-user bodies; the webhook gateway takes 1 MiB. */
  bodyLimit?: number;
  trustProxy?: boolean | string[] | ((addr: string, hop: number) => boolean);
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const HEADER_LIMIT = 16 * 1024;

function makeAjv(coerce: boolean): Ajv {
  // Bodies are strict: no coercion ("12" is not 12), unknown properties are refused by the schema.
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

async function withTimeout(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(check),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(checks: ReadinessChecks): Promise<Readiness> {
  const [pg, mq] = await Promise.all([withTimeout(checks.postgres, 1500), withTimeout(checks.rabbitmq, 1500)]);
  return {
    status: pg && mq ? 'ok' : 'unavailable',
    checks: { postgres: pg ? 'up' : 'down', rabbitmq: mq ? 'up' : 'down' },
  };
}

interface ValidationItem {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function describeValidation(err: FastifyError & { validation?: ValidationItem[]; validationContext?: string }): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  const part = err.validationContext ?? 'body';
  const path = (first.instancePath ?? '').split('/').filter(Boolean).join('.');
  const field = path ? `${part}.${path}` : part;
  if (first.keyword === 'additionalProperties')
    return `${field} has an unknown property "${String(first.params?.['additionalProperty'])}"`;
  if (first.keyword === 'required') return `${field}.${String(first.params?.['missingProperty'])} is required`;
  return `${field} ${first.message ?? 'is invalid'}`;
}

/**
 * Postgres away (docs/api.md, `database-unavailable`): refused or lost connections, no host that
 * takes writes (a failover under way: docs/guarantees.md), the server shutting down or starting.
 */
function isDatabaseOutage(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    ['57P01', '57P02', '57P03', '08001', '08006', '08003', '25006'].includes(code) ||
    (['ECONNREFUSED', 'ECONNRESET'].includes(code) && !/http|fetch/i.test(message)) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      message,
    )
  );
}

/** Maps any error to docs/api.md's problem+json; 5xx details are logged, never shown. */
export function toProblem(err: unknown): {
  status: number;
  body: ReturnType<typeof problemBody>;
  headers: Record<string, string>;
} {
  if (err instanceof AppError)
    return { status: err.status, body: problemBody(err.code, err.message), headers: err.headers };
  const e = err as FastifyError & { validation?: ValidationItem[]; validationContext?: string };
  if (e.validation) return { status: 400, body: problemBody('validation', describeValidation(e)), headers: {} };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: problemBody('payload-too-large', 'the request body is larger than this route accepts'),
        headers: {},
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        body: problemBody('unsupported-media-type', 'send the body as application/json'),
        headers: {},
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return {
        status: 400,
        body: problemBody('validation', 'the body is empty but the content type says JSON'),
        headers: {},
      };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        status: 400,
        body: problemBody('validation', 'the content length does not match the body'),
        headers: {},
      };
    default:
      break;
  }
  if (isDatabaseOutage(err))
    return {
      status: 503,
      body: problemBody('database-unavailable', 'the database is unavailable; try again shortly'),
      headers: { 'retry-after': '2' },
    };
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 400) {
    const detail = /prototype|constructor/i.test(e.message)
      ? 'the body holds a forbidden "__proto__" or "constructor" key'
      : 'the body is not valid JSON';
    return { status, body: problemBody('validation', detail), headers: {} };
  }
  if (status === 401)
    return { status, body: problemBody('unauthorized', 'a valid bearer token is required'), headers: {} };
  if (status === 403) return { status, body: problemBody('forbidden', 'not allowed'), headers: {} };
  if (status === 404) return { status, body: problemBody('not-found', 'no such resource'), headers: {} };
  if (status === 413)
    return { status, body: problemBody('payload-too-large', 'the request body is too large'), headers: {} };
  if (status === 415)
    return { status, body: problemBody('unsupported-media-type', 'send the body as application/json'), headers: {} };
  if (status === 429) return { status, body: problemBody('rate-limited', 'too many requests'), headers: {} };
  if (status === 503)
    return { status, body: problemBody('unavailable', 'the service is shutting down or unavailable'), headers: {} };
  if (status > 400 && status < 500)
    return { status, body: { ...problemBody('validation', e.message), status }, headers: {} };
  return { status: 500, body: problemBody('internal', 'an internal error occurred; it has been logged'), headers: {} };
}

function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text, body] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          problemBody('headers-too-large', 'request headers are larger than 16 KiB'),
        ]
      : [400, 'Bad Request', problemBody('validation', 'the request is not valid HTTP')];
  const json = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
  );
}

/**
 * The Fastify base every HTTP process uses: strict bodies, problem+json errors, the
 * correlation id, health, readiness and metrics. It never listens; `main.ts` does.
 */
/**
 * A page that answers by calling the app's own API in-process (`app.inject`, the admin portal)
 * marks that call with this header, whose value is secret to the process: the inner call is not
 * counted in the metrics or logged a second time. An outside caller cannot forge it.
 */
export const INNER_CALL_HEADER = 'x-billing-inner-call';
export const INNER_CALL_TOKEN = randomUUID();

export function createHttpApp({
  service,
  logger,
  metrics,
  readiness,
  bodyLimit = 16 * 1024,
  trustProxy = false,
}: HttpBaseOptions): HttpApp {
  const app = Fastify({
    logger: false,
    bodyLimit,
    trustProxy,
    http: { maxHeaderSize: HEADER_LIMIT },
    // Path parameters are checked by each route's schema (a clear 400 or 404): the router's own
    // limit would answer 414 in Fastify's format instead.
    routerOptions: { maxParamLength: 2048 },
    genReqId: (req) => acceptCorrelationId(req.headers['x-request-id']),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    clientErrorHandler,
    ajv: { customOptions: { strict: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const bodyAjv = makeAjv(false);
  const otherAjv = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : otherAjv).compile(schema as object),
  );
  app.removeContentTypeParser(['text/plain']);

  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    runWithCorrelation(req.id, done);
  });
  app.addHook('onResponse', (req, reply, done) => {
    if (req.headers[INNER_CALL_HEADER] === INNER_CALL_TOKEN) return done();
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { method: req.method, route, status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    if (!route.startsWith('/health') && route !== '/metrics') {
      logger.info('http request', {
        correlationId: req.id,
        method: req.method,
        url: loggableUrl(req.url),
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      });
    }
    done();
  });

  app.setErrorHandler((err, req, reply) => {
    const { status, body, headers } = toProblem(err);
    if (status >= 500)
      logger.error('request failed', { correlationId: req.id, method: req.method, url: loggableUrl(req.url), err });
    reply
      .status(status)
      .headers(headers)
      .type('application/problem+json')
      .send({ ...body, instance: req.url.split('?')[0] });
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .status(404)
      .type('application/problem+json')
      .send({
        ...problemBody('not-found', `no route ${req.method} ${req.url.split('?')[0]}`),
        instance: req.url.split('?')[0],
      });
  });

  app.get('/health/live', async () => ({ status: 'ok', service }));
  app.get(
    '/health/ready',
    { schema: { response: { 200: ReadinessSchema, 503: ReadinessSchema } } },
    async (_req, reply) => {
      const r = await checkReadiness(readiness);
      return reply.status(r.status === 'ok' ? 200 : 503).send(r);
    },
  );
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  return app;
}

/**
 * Query keys whose values may be logged: ours, none of them naming a buyer or a PayPal wallet. Any
 * other key (PayPal's `PayerID`, `token`, `approval_token_id`, `approval_session_id`, ...) is left
 * out of the log line whole (docs/processes.md, logging).
 */
export const LOGGED_QUERY_KEYS: ReadonlySet<string> = new Set([
  'planId',
  'limit',
  'cursor',
  'direction',
  'status',
  'redirect',
  'mode',
  'plan',
  'from',
  'to',
  'q',
  'kind',
  'state',
  'action',
  'checkout',
  'payment_method',
]);

/** A request URL as logged: the path and the allow-listed query keys only. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const kept = [...new URLSearchParams(url.slice(q + 1)).entries()].filter(([k]) => LOGGED_QUERY_KEYS.has(k));
  return kept.length ? `${url.slice(0, q)}?${new URLSearchParams(kept).toString()}` : url.slice(0, q);
}
