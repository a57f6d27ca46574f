import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import type { HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import { PlanSchema } from '../schemas.js';

/** How long one replica serves the catalogue it read before reading it again (an operator's change shows within this). */
export const PLANS_TTL_MS = 2_000;

export function plansRoutes(app: HttpApp, { rt }: BillingApiDeps): void {
  // The catalogue is small and read far more often than it changes: one read per PLANS_TTL_MS,
  // concurrent requests sharing it, served as prepared JSON with an ETag (a 304 costs no body).
  let cached: { at: number; body: string; etag: string } | null = null;
  let loading: Promise<{ at: number; body: string; etag: string }> | null = null;
  const load = async () => {
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
  const catalogue = async () => {
    if (cached && Date.now() - cached.at < PLANS_TTL_MS) return cached;
    loading ??= load().finally(() => (loading = null));
    cached = await loading;
    return cached;
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
      reply.header('etag', etag).header('cache-control', `public, max-age=${Math.floor(PLANS_TTL_MS / 1000)}`);
      if (req.headers['if-none-match'] === etag) return reply.status(304).send(null);
      // Already JSON: sent as is, not serialised again.
      return reply
        .type('application/json; charset=utf-8')
        .serializer(String)
        .send(body as never);
    },
  );
}
