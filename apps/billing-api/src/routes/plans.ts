import { createHash } from 'node:crypto';
import pg from 'pg';
import { Type } from 'typebox';
import type { HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import { PlanSchema } from '../schemas.js';

/** The longest one replica keeps the catalogue it read, even when no change is announced. */
export const PLANS_TTL_MS = 60_000;

/**
 * Listens on `plans_changed` (a trigger notifies it at the commit of any write to `plans`): the
 * cached catalogue is dropped on each notification, and not kept at all while the listening
 * connection is down, so an operator's change shows on the next request.
 */
class PlansChanged {
  listening = false;
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  constructor(
    private readonly databaseUrl: string,
    private readonly onChange: () => void,
  ) {}

  async start(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'plans-listener' });
    const lost = () => {
      this.listening = false;
      this.onChange();
      client.end().catch(() => undefined);
      if (this.client === client) this.client = undefined;
      if (!this.stopped) this.timer = setTimeout(() => void this.start(), 1_000);
    };
    client.on('error', lost);
    client.on('notification', () => this.onChange());
    try {
      await client.connect();
      await client.query('LISTEN plans_changed');
      this.client = client;
      this.listening = true;
      this.onChange();
    } catch {
      lost();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.listening = false;
    await this.client?.end().catch(() => undefined);
  }
}

export function plansRoutes(app: HttpApp, { rt }: BillingApiDeps): void {
  // The catalogue is small and read far more often than it changes: read once and kept until a
  // plan changes, concurrent requests sharing one read, served as prepared JSON with an ETag (a
  // 304 costs no body).
  type Catalogue = { at: number; body: string; etag: string };
  let cached: Catalogue | null = null;
  // A change announced while a read is in flight must not let that read be kept: reads are
  // tagged with the generation they started in, and only the current generation's is shared or kept.
  let generation = 0;
  let loading: { generation: number; read: Promise<Catalogue> } | null = null;
  const changes = new PlansChanged(rt.databaseUrl, () => {
    generation += 1;
    cached = null;
  });
  app.addHook('onReady', () => changes.start());
  app.addHook('onClose', () => changes.stop());
  const load = async (): Promise<Catalogue> => {
    const rows = await rt.db
      .selectFrom('plans')
      .selectAll()
      .where('active', '=', true)
      .orderBy('amount')
      .orderBy('id')
      .execute();
    const body = JSON.stringify({
      items: rows.map((p) => ({
        id: p.id,
        name: p.name,
        description: p.description,
        amount: p.amount,
        currency: p.currency,
        period: p.period,
        role: p.role,
      })),
    });
    return { at: Date.now(), body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
  };
  const catalogue = async (): Promise<Catalogue> => {
    if (cached && changes.listening && Date.now() - cached.at < PLANS_TTL_MS) return cached;
    const started = generation;
    if (!loading || loading.generation !== started) {
      const read = load();
      loading = { generation: started, read };
      void read
        .finally(() => {
          if (loading?.read === read) loading = null;
        })
        .catch(() => undefined);
    }
    const read = await loading.read;
    if (changes.listening && started === generation) cached = read;
    return read;
  };

  app.get(
    '/v1/plans',
    {
      schema: {
        tags: ['plans'],
        summary: 'The active plans (public)',
        response: { 200: Type.Object({ items: Type.Array(PlanSchema) }), 304: Type.Null() },
      },
    },
    async (req, reply) => {
      const { body, etag } = await catalogue();
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (req.headers['if-none-match'] === etag) return reply.status(304).send(null);
      // Already JSON: sent as is, not serialised again.
      return reply
        .type('application/json; charset=utf-8')
        .serializer(String)
        .send(body as never);
    },
  );
}
