import { createHash, randomUUID } from 'node:crypto';
import secureJson from 'secure-json-parse';
import { Type } from 'typebox';
import type { FastifyReply } from 'fastify';
import { PROBLEM_TITLES, ProviderEventReceived } from '@billing/contracts';
import { insertWithMessage } from '@billing/messaging';
import { ProviderUnavailableError, type PaymentProvider } from '@billing/payments';
import { AppError, TtlCache, type HttpApp } from '@billing/service-kit';
import type { Runtime } from '@billing/runtime';

const PAYPAL_HEADERS = [
  'paypal-transmission-id',
  'paypal-transmission-time',
  'paypal-transmission-sig',
  'paypal-cert-url',
  'paypal-auth-algo',
] as const;

interface RawJson {
  raw: string;
  json: Record<string, unknown>;
}

/**
 * JSON.parse that refuses `__proto__` and `constructor.prototype` keys, as Fastify's own parser does
 * (secure-json-parse: it scans only a text that holds those words, where a reviver ran on every key).
 */
function parseUntrusted(text: string): unknown {
  try {
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    if (/prototype property/i.test((err as Error).message))
      throw new AppError('validation', 'the body holds a forbidden "__proto__" or "constructor" key');
    throw err;
  }
}

/** A certificate URL PayPal would issue: https on paypal.com or a subdomain, no credentials; or the API base's origin. */
export function isPayPalCert(url: string, apiOrigin: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  if (u.origin === apiOrigin) return true;
  return u.protocol === 'https:' && (u.hostname === 'paypal.com' || u.hostname.endsWith('.paypal.com'));
}

/**
 * docs/webhooks.md: verify with PayPal (the raw body as `webhook_event`), then store the event once per
 * PayPal event id together with the message for the payment-worker, in one transaction; a 200
 * therefore holds even when RabbitMQ is down.
 */
export function paypalWebhookRoute(
  app: HttpApp,
  {
    rt,
    provider,
    perClientPerMinute,
    maxPending,
    transmissionToleranceMs,
    apiBase,
  }: {
    rt: Runtime;
    provider: PaymentProvider;
    perClientPerMinute: number;
    /** WEBHOOK_MAX_PENDING */
    maxPending: number;
    /** WEBHOOK_TRANSMISSION_TOLERANCE_MS */
    transmissionToleranceMs: number;
    /** PAYPAL_API_BASE: a certificate on its origin is accepted (a local stand-in serves them there) */
    apiBase: string;
  },
): void {
  // Deliveries held at once, from their first byte to their answer: a flood waits at PayPal (which
  // redelivers a 503), not in this process's memory (docs/webhooks.md).
  let pending = 0;
  const certOrigin = new URL(apiBase).origin;
  // A delivery repeated (PayPal's retries, or a forger replaying one) is judged once: PayPal is not
  // asked again about the same headers and body for five minutes.
  const verdicts = new TtlCache<boolean>(5 * 60_000, 10_000);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      const json = parseUntrusted(body as string);
      if (!json || typeof json !== 'object' || Array.isArray(json))
        throw new AppError('validation', 'the body must be a JSON object');
      done(null, { raw: body as string, json });
    } catch (err) {
      done(err instanceof AppError ? err : new AppError('validation', 'the body is not valid JSON'), undefined);
    }
  });

  app.post(
    '/webhooks/paypal',
    {
      schema: { response: { 200: Type.Object({ status: Type.String(), duplicate: Type.Boolean() }) } },
      // Per client address: far above what PayPal sends from one address, low enough to bound a flood.
      config: { rateLimit: { max: perClientPerMinute, timeWindow: '1 minute' } },
      onRequest: (req, reply, done) => {
        if (pending >= maxPending) {
          // Answered here, not through the error handler: a flood is load, not an error to log each time.
          const busy = reply as unknown as FastifyReply;
          busy
            .status(503)
            .header('retry-after', '5')
            .type('application/problem+json')
            .send({
              type: '/problems/unavailable',
              title: PROBLEM_TITLES.unavailable,
              status: 503,
              detail: `${maxPending} deliveries are being handled; deliver this one again shortly`,
            });
          return;
        }
        pending += 1;
        let counted = true;
        reply.raw.once('close', () => {
          if (counted) pending -= 1;
          counted = false;
        });
        done();
      },
    },
    async (req) => {
      const body = req.body as RawJson | undefined;
      const missing = PAYPAL_HEADERS.filter((h) => !req.headers[h]);
      if (missing.length) throw new AppError('validation', `missing PayPal headers: ${missing.join(', ')}`);
      const repeated = PAYPAL_HEADERS.filter(
        (h) => Array.isArray(req.headers[h]) || String(req.headers[h]).includes(','),
      );
      if (repeated.length)
        throw new AppError('validation', `PayPal headers given more than once: ${repeated.join(', ')}`);
      if (!body) throw new AppError('validation', 'a JSON body is required');
      const eventId = body.json['id'];
      const eventType = body.json['event_type'];
      if (
        typeof eventId !== 'string' ||
        !eventId ||
        eventId.length > 200 ||
        typeof eventType !== 'string' ||
        !eventType
      ) {
        throw new AppError('validation', 'body.id and body.event_type are required');
      }
      const headers = Object.fromEntries(PAYPAL_HEADERS.map((h) => [h, String(req.headers[h])]));
      // PayPal's cheap local checks first (no call to PayPal for a delivery that cannot be genuine):
      // a transmission time near our clock, a certificate on PayPal's hosts (or the API base's own).
      const sent = Date.parse(headers['paypal-transmission-time']!);
      if (Number.isNaN(sent)) throw new AppError('validation', 'paypal-transmission-time is not a date-time');
      if (Math.abs(Date.now() - sent) > transmissionToleranceMs)
        throw new AppError('unauthorized', 'the transmission time is too far from now; PayPal sends fresh deliveries');
      if (!isPayPalCert(headers['paypal-cert-url']!, certOrigin))
        throw new AppError('unauthorized', "the certificate URL is not PayPal's");
      const delivery = createHash('sha256')
        .update(PAYPAL_HEADERS.map((h) => headers[h]).join('\n'))
        .update('\n')
        .update(body.raw)
        .digest('hex');
      let genuine = verdicts.get(delivery);
      try {
        if (genuine === undefined) {
          genuine = await provider.verifyWebhook({ headers, rawBody: body.raw });
          verdicts.set(delivery, genuine);
        }
      } catch (err) {
        if (err instanceof ProviderUnavailableError)
          throw new AppError(
            'signature-check-unavailable',
            'PayPal could not confirm the signature; deliver again later',
          );
        throw err;
      }
      if (!genuine) {
        rt.logger.warn('webhook rejected: verification failed', { eventId, eventType });
        throw new AppError('unauthorized', 'the webhook signature did not verify');
      }
      const resource = (body.json['resource'] ?? {}) as Record<string, unknown>;
      const rowId = randomUUID();
      // The event, its message for the payment-worker and the relay's wake-up in one statement.
      const stored = await insertWithMessage(
        rt.db,
        (db) =>
          db
            .insertInto('provider_events')
            .values({
              id: rowId,
              provider: 'paypal',
              provider_event_id: eventId,
              event_type: eventType,
              resource_type: typeof body.json['resource_type'] === 'string' ? body.json['resource_type'] : null,
              resource_id: typeof resource['id'] === 'string' ? resource['id'] : null,
              payload: body.raw,
            })
            .onConflict((oc) => oc.columns(['provider', 'provider_event_id']).doNothing())
            .returning('id'),
        ProviderEventReceived,
        (id) => ({ providerEventRowId: id, provider: 'paypal' as const, eventType }),
        rowId,
      );
      rt.logger.info('webhook stored', { eventId, eventType, duplicate: !stored });
      return { status: 'accepted', duplicate: !stored };
    },
  );
}
