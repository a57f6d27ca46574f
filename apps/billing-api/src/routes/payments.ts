import { Type } from 'typebox';
import { loadReceipt, receiptHtml, receiptPdf } from '@billing/billing-core';
import { isUuid, keysetPage, paymentView } from '@billing/http-api';
import { AppError, type HttpApp } from '@billing/service-kit';
import type { BillingApiDeps } from '../app.js';
import { IdParams, ListQuery, PaymentSchema, Problem } from '../schemas.js';

export function paymentRoutes(app: HttpApp, { rt, config }: BillingApiDeps): void {
  app.get(
    '/v1/payments',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['payments'],
        summary: "The caller's payments, newest first",
        security: [{ bearerAuth: [] }],
        querystring: ListQuery,
        response: {
          200: Type.Object({ items: Type.Array(PaymentSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          400: Problem,
          401: Problem,
        },
      },
    },
    async (req) => {
      const { rows, nextCursor } = await keysetPage(
        rt.db.selectFrom('payments').selectAll().where('user_id', '=', req.userId),
        req.query.limit ?? 20,
        req.query.cursor,
      );
      return { items: rows.map(paymentView), nextCursor };
    },
  );

  app.get(
    '/v1/payments/:id',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['payments'],
        summary: "One of the caller's payments",
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: PaymentSchema, 401: Problem, 404: Problem },
      },
    },
    async (req) => {
      const id = req.params.id;
      const row = isUuid(id)
        ? await rt.db
            .selectFrom('payments')
            .selectAll()
            .where('id', '=', id)
            .where('user_id', '=', req.userId)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new AppError('not-found', 'no such payment');
      return paymentView(row);
    },
  );

  app.get(
    '/v1/payments/:id/receipt',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['payments'],
        summary:
          'The receipt of a completed payment (with its credit notes): PDF for Accept: application/pdf, else HTML',
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: {
          200: {
            description: 'the receipt',
            content: { 'text/html': { schema: {} }, 'application/pdf': { schema: {} } },
          },
          401: Problem,
          404: Problem,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const view = isUuid(id) ? await loadReceipt(rt.db, id, req.userId) : null;
      if (!view) throw new AppError('not-found', 'no receipt: no such payment of yours, or it has not completed');
      reply.header('cache-control', 'private, no-store');
      if (/application\/pdf/.test(req.headers.accept ?? ''))
        return reply
          .type('application/pdf')
          .header('content-disposition', `inline; filename="${view.receipt.number}.pdf"`)
          .send((await receiptPdf(view, config.SELLER_NAME)) as never);
      return reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        .send(receiptHtml(view, config.SELLER_NAME) as never);
    },
  );
}
