import { Type } from 'typebox';
import type { HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import { PlanSchema } from '../schemas.js';

export function plansRoutes(app: HttpApp, { rt }: BillingApiDeps): void {
  app.get(
    '/v1/plans',
    {
      schema: {
        tags: ['plans'],
        summary: 'The active plans (public)',
        response: { 200: Type.Object({ items: Type.Array(PlanSchema) }) },
      },
    },
    async () => {
      const rows = await rt.db
        .selectFrom('plans')
        .selectAll()
        .where('active', '=', true)
        .orderBy('amount')
        .orderBy('id')
        .execute();
      return {
        items: rows.map((p) => ({
          id: p.id,
          name: p.name,
          description: p.description,
          amount: p.amount,
          currency: p.currency,
          period: p.period,
          role: p.role,
        })),
      };
    },
  );
}
