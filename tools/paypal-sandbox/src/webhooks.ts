import { createHmac, randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Behaviour } from './state.js';
import { newId } from './state.js';

export interface SentWebhook {
  id: string;
  eventType: string;
  transmissionId: string;
  body: string;
  deliveries: { at: string; status: number | string }[];
}

export interface WebhookOptions {
  /** Where PayPal posts events (our webhook-gateway). */
  url: string | undefined;
  /** The webhook id events are signed for. */
  webhookId: string;
  /** Secret of the stand-in's signatures (PayPal signs with a certificate; verification is PayPal's call either way). */
  secret: string;
  publicUrl: string;
  /** First retry delay; doubles on each try (PayPal retries for days, the stand-in faster). */
  retryBaseMs: number;
  maxAttempts: number;
}

const sign = (secret: string, transmissionId: string, time: string, webhookId: string, body: string) =>
  createHmac('sha256', secret)
    .update(`${transmissionId}|${time}|${webhookId}|${crc32(Buffer.from(body, 'utf8'))}`)
    .digest('base64');

/** Sends PayPal-shaped webhook events with PayPal's five headers, retrying on non-2xx answers. */
export class WebhookSender {
  readonly sent: SentWebhook[] = [];
  private held: (() => void)[] = [];
  private heldKinds: string[] = [];
  private readonly signatures = new Map<string, { sig: string; time: string }>();
  private timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly opts: WebhookOptions,
    private readonly behaviour: () => Behaviour,
  ) {}

  setUrl(url: string): void {
    this.opts.url = url;
  }

  emit(eventType: string, resourceType: string, resource: unknown, summary: string): SentWebhook {
    const id = `WH-${newId('', 8)}-${newId('', 17)}`;
    const now = new Date().toISOString();
    const event = {
      id,
      event_version: '1.0',
      create_time: now,
      resource_type: resourceType,
      resource_version: '2.0',
      event_type: eventType,
      summary,
      resource,
      links: [
        { href: `${this.opts.publicUrl}/v1/notifications/webhooks-events/${id}`, rel: 'self', method: 'GET' },
        { href: `${this.opts.publicUrl}/v1/notifications/webhooks-events/${id}/resend`, rel: 'resend', method: 'POST' },
      ],
    };
    const record: SentWebhook = {
      id,
      eventType,
      transmissionId: randomUUID(),
      body: JSON.stringify(event),
      deliveries: [],
    };
    this.sent.push(record);
    const mode = this.behaviour().webhookMode;
    if (mode === 'drop') return record;
    if (mode === 'hold') {
      this.held.push(() => this.deliver(record, 1));
      this.heldKinds.push(eventType);
      return record;
    }
    const copies = mode === 'duplicate' ? 5 : 1;
    for (let i = 0; i < copies; i++) this.deliver(record, 1);
    return record;
  }

  /** Delivers held events, in the order they were emitted or reversed. */
  release(order: 'forward' | 'reverse' | number[]): number {
    const batch = Array.isArray(order)
      ? order.map((i) => this.held[i]).filter((f): f is () => void => Boolean(f))
      : order === 'reverse'
        ? [...this.held].reverse()
        : [...this.held];
    this.held = [];
    batch.forEach((send) => send());
    return batch.length;
  }

  /** The event types held, in the order they were emitted. */
  heldTypes(): string[] {
    return this.heldKinds.slice(-this.held.length);
  }

  /** Delivers an event again, as PayPal's resend does. */
  resend(id: string): boolean {
    const record = this.sent.find((s) => s.id === id);
    if (!record) return false;
    this.deliver(record, 1);
    return true;
  }

  /** docs/webhooks.md's verdict: SUCCESS only for an event we sent, byte for byte, signed for this webhook id. */
  verify(input: {
    transmissionId: string;
    transmissionTime: string;
    transmissionSig: string;
    webhookId: string;
    rawEvent: string | null;
  }): boolean {
    if (!input.rawEvent || input.webhookId !== this.opts.webhookId) return false;
    const expected = sign(
      this.opts.secret,
      input.transmissionId,
      input.transmissionTime,
      input.webhookId,
      input.rawEvent,
    );
    return (
      expected === input.transmissionSig && this.signatures.get(input.transmissionId)?.sig === input.transmissionSig
    );
  }

  /**
   * PayPal's five headers for events a load generator delivers itself (the benchmark), signed and
   * remembered as if this stand-in had sent them: `verify` then judges them as it judges its own.
   */
  signForDelivery(bodies: string[]): Record<string, string>[] {
    return bodies.map((body) => {
      const transmissionId = randomUUID();
      const time = new Date().toISOString();
      const sig = sign(this.opts.secret, transmissionId, time, this.opts.webhookId, body);
      this.signatures.set(transmissionId, { sig, time });
      return this.headersOf(transmissionId, time, sig);
    });
  }

  private headersOf(transmissionId: string, time: string, sig: string): Record<string, string> {
    return {
      'paypal-transmission-id': transmissionId,
      'paypal-transmission-time': time,
      'paypal-transmission-sig': sig,
      'paypal-cert-url': `${this.opts.publicUrl}/v1/notifications/certs/CERT-360caa42-fca2a594-stand-in`,
      'paypal-auth-algo': 'SHA256withRSA',
    };
  }

  close(): void {
    this.timers.forEach(clearTimeout);
    this.timers.clear();
  }

  private deliver(record: SentWebhook, attempt: number): void {
    const url = this.opts.url;
    if (!url) return;
    const transmissionId =
      attempt === 1 && !this.signatures.has(record.transmissionId) ? record.transmissionId : randomUUID();
    const time = new Date().toISOString();
    const sig = sign(this.opts.secret, transmissionId, time, this.opts.webhookId, record.body);
    this.signatures.set(transmissionId, { sig, time });
    fetch(url, {
      method: 'POST',
      body: record.body,
      signal: AbortSignal.timeout(10_000),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'PayPal/AUHD-214.0-58843540',
        ...this.headersOf(transmissionId, time, sig),
      },
    }).then(
      async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        record.deliveries.push({ at: time, status: res.status });
        if (!res.ok) this.retry(record, attempt);
      },
      (err: Error) => {
        record.deliveries.push({ at: time, status: err.message });
        this.retry(record, attempt);
      },
    );
  }

  private retry(record: SentWebhook, attempt: number): void {
    if (attempt >= this.opts.maxAttempts) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        this.deliver(record, attempt + 1);
      },
      this.opts.retryBaseMs * 2 ** (attempt - 1),
    );
    this.timers.add(t);
  }
}

/** The raw text of the top-level `webhook_event` member of a JSON document, as sent. */
export function rawMember(json: string, key: string): string | null {
  const at = json.indexOf(`"${key}"`);
  if (at < 0) return null;
  let i = json.indexOf(':', at + key.length + 2);
  if (i < 0) return null;
  i++;
  while (/\s/.test(json[i] ?? '')) i++;
  if (json[i] !== '{') return null;
  let depth = 0;
  let inString = false;
  for (let j = i; j < json.length; j++) {
    const ch = json[j];
    if (inString) {
      if (ch === '\\') j++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return json.slice(i, j + 1);
  }
  return null;
}
