import { createHash } from 'node:crypto';
import { ChannelListener, type PlanRow } from '@billing/db';
import type { HttpApp } from '@billing/service-kit';
import { publicPlanView } from '@billing/http-api';
import type { Runtime } from '@billing/runtime';

/** The longest one replica keeps the catalogue it read, even when no change is announced. */
export const PLANS_TTL_MS = 60_000;

/** The active plans as rows (for checkout) and as the prepared JSON of `GET /v1/plans`. */
export interface Catalogue {
  at: number;
  body: string;
  etag: string;
  byId: Map<string, PlanRow>;
}

/**
 * The catalogue is small and read far more often than it changes: read once and kept until a plan
 * changes, concurrent requests sharing one read. `GET /v1/plans` serves it as prepared JSON with an
 * ETag (a 304 costs no body); checkout finds the plan bought in it.
 */
export function createCatalogue(app: HttpApp, rt: Runtime): { read(): Promise<Catalogue> } {
  let cached: Catalogue | null = null;
  // A change announced while a read is in flight must not let that read be kept: reads are
  // tagged with the generation they started in, and only the current generation's is shared or kept.
  let generation = 0;
  let loading: { generation: number; read: Promise<Catalogue> } | null = null;
  // A trigger notifies `plans_changed` at the commit of any write to `plans`: the catalogue kept
  // is dropped on each notification, and none is kept while LISTEN is not in place, so an
  // operator's change shows on the next request.
  const forget = () => {
    generation += 1;
    cached = null;
  };
  const changes = new ChannelListener({
    databaseUrl: rt.databaseUrl,
    channel: 'plans_changed',
    name: 'plans-listener',
    onNotify: forget,
    onListening: forget,
    onLost: forget,
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
    const body = JSON.stringify({ items: rows.map(publicPlanView) });
    return {
      at: Date.now(),
      body,
      etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
      byId: new Map(rows.map((p) => [p.id, p])),
    };
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

  return { read: catalogue };
}
