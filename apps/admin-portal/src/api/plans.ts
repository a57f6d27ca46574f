import { Type } from 'typebox';
import { sql } from 'kysely';
import { planColumns, planProblems, transact } from '@billing/db';
import { AdminPlanSchema, Page, planView } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { errors, PlanCreate, PlanPatch, Slug } from './schemas.js';

/** Plans: listed, created, changed; never deleted, only deactivated. */
export const plansApi: AdminPlugin = async (api, { rt }) => {
  api.get('/plans', { schema: { tags: ['admin'], response: { 200: Page(AdminPlanSchema), ...errors } } }, async () => ({
    items: (await rt.db.selectFrom('plans').selectAll().orderBy('id').execute()).map(planView),
    nextCursor: null,
  }));

  api.post(
    '/plans',
    { schema: { tags: ['admin'], body: PlanCreate, response: { 201: AdminPlanSchema, ...errors } } },
    async (req, reply) => {
      // The schema checks the shape; the catalog's rules check what it means (a currency PayPal takes, a period).
      const { reason = null, ...plan } = req.body;
      const problems = planProblems(plan);
      if (problems.length) throw new AppError('validation', problems.join('; '));
      const created = await transact(rt.db, async (trx) => {
        const exists = await trx.selectFrom('plans').select('id').where('id', '=', plan.id).executeTakeFirst();
        if (exists) throw new AppError('validation', `a plan "${plan.id}" exists already; change it with PATCH`);
        const row = await trx.insertInto('plans').values(planColumns(plan)).returningAll().executeTakeFirstOrThrow();
        await audit(trx, {
          actor: actor(req),
          action: 'plan.create',
          target: `plan:${plan.id}`,
          reason,
          before: null,
          after: planView(row),
        });
        return row;
      });
      return reply.status(201).send(planView(created));
    },
  );

  api.patch(
    '/plans/:id',
    {
      schema: {
        tags: ['admin'],
        params: Type.Object({ id: Slug }),
        body: PlanPatch,
        response: { 200: AdminPlanSchema, ...errors },
      },
    },
    async (req) =>
      transact(rt.db, async (trx) => {
        const cur = await trx
          .selectFrom('plans')
          .selectAll()
          .where('id', '=', req.params.id)
          .forUpdate()
          .executeTakeFirst();
        if (!cur) throw new AppError('not-found', 'no such plan');
        const { reason = null, ...patch } = req.body;
        if (patch.id !== undefined && patch.id !== cur.id) throw new AppError('validation', 'a plan id cannot change');
        const merged = { ...planView(cur), ...patch };
        const problems = planProblems(merged);
        if (problems.length) throw new AppError('validation', problems.join('; '));
        const { id: _id, ...fields } = planColumns(merged);
        const row = await trx
          .updateTable('plans')
          .set({ ...fields, updated_at: sql`now()` })
          .where('id', '=', cur.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit(trx, {
          actor: actor(req),
          action: 'plan.update',
          target: `plan:${cur.id}`,
          reason,
          before: planView(cur),
          after: planView(row),
        });
        return planView(row);
      }),
  );
};
