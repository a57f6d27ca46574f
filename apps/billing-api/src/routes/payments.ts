import { Type } from 'typebox';
import { paymentView } from '@billing/billing-core';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import { decodeCursor, encodeCursor, isUuid } from '../pagination.js';
import { IdParams, ListQuery, PaymentSchema, Problem } from '../schemas.js';

export function paymentRoutes(app: HttpApp, { rt }: BillingApiDeps): void {
  app.get('/v1/payments', {
    onRequest: app.authenticate,
    schema: { tags: ['payments'], summary: "The caller's payments, newest first", security: [{ bearerAuth: [] }], querystring: ListQuery,
      response: { 200: Type.Object({ items: Type.Array(PaymentSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), 400: Problem, 401: Problem } },
  }, async (req) => {
    const limit = req.query.limit ?? 20;
    const cursor = decodeCursor(req.query.cursor);
    let q = rt.db.selectFrom('payments').selectAll().where('user_id', '=', req.userId);
    if (cursor) q = q.where((eb) => eb.or([eb('created_at', '<', cursor.at), eb.and([eb('created_at', '=', cursor.at), eb('id', '<', cursor.id)])]));
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { items: page.map(paymentView), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!) : null };
  });

  app.get('/v1/payments/:id', {
    onRequest: app.authenticate,
    schema: { tags: ['payments'], summary: "One of the caller's payments", security: [{ bearerAuth: [] }], params: IdParams, response: { 200: PaymentSchema, 401: Problem, 404: Problem } },
  }, async (req) => {
    const id = req.params.id;
    const row = isUuid(id) ? await rt.db.selectFrom('payments').selectAll().where('id', '=', id).where('user_id', '=', req.userId).executeTakeFirst() : undefined;
    if (!row) throw new AppError('not-found', 'no such payment');
    return paymentView(row);
  });
}
