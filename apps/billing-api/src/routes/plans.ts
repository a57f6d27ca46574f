import { Type } from 'typebox';
import type { HttpApp } from '@billing/service-kit';
import type { Catalogue } from '../catalogue.js';
import { PlanSchema } from '../schemas.js';

export function plansRoutes(app: HttpApp, catalogue: { read(): Promise<Catalogue> }): void {
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
      const { body, etag } = await catalogue.read();
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
