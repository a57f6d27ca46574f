import { Type } from 'typebox';
import { payments, refundableLeft, requestRefund } from '@billing/billing-core';
import { isUuid, keysetPage, Page, paymentView } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { AdminPayment, errors, IdParams, ListQuery, PaymentDetail, Reason } from './schemas.js';

/** Payments of all users; one with its PayPal events and refunds; an operator's refund. */
export const paymentsApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/payments',
    { schema: { tags: ['admin'], querystring: ListQuery, response: { 200: Page(AdminPayment), ...errors } } },
    async (req) => {
      let q = rt.db.selectFrom('payments').selectAll();
      if (req.query.userId) q = q.where('user_id', '=', req.query.userId);
      if (req.query.status) q = q.where('status', '=', req.query.status as never);
      const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor);
      return { items: rows.map((p) => ({ ...paymentView(p), userId: p.user_id })), nextCursor };
    },
  );

  api.get(
    '/payments/:id',
    { schema: { tags: ['admin'], params: IdParams, response: { 200: PaymentDetail, ...errors } } },
    async (req) => {
      const id = req.params.id;
      const p = isUuid(id)
        ? await rt.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirst()
        : undefined;
      if (!p) throw new AppError('not-found', 'no such payment');
      const [events, refunds] = await Promise.all([
        rt.db
          .selectFrom('provider_events')
          .select(['event_type', 'provider_event_id', 'received_at', 'outcome'])
          .where('payment_id', '=', id)
          .orderBy('received_at')
          .execute(),
        rt.db.selectFrom('refunds').selectAll().where('payment_id', '=', id).orderBy('created_at').execute(),
      ]);
      return {
        ...paymentView(p),
        userId: p.user_id,
        providerOrderId: p.provider_order_id,
        providerCaptureId: p.provider_capture_id,
        events: events.map((e) => ({
          type: e.event_type,
          id: e.provider_event_id,
          receivedAt: e.received_at.toISOString(),
          outcome: e.outcome,
        })),
        refunds: refunds.map((r) => ({
          id: r.id,
          amount: r.amount,
          currency: r.currency,
          status: r.status === 'requested' ? 'pending' : r.status,
          origin: r.origin,
          reason: r.reason,
          failureReason: r.failure_reason,
          createdAt: r.created_at.toISOString(),
        })),
      };
    },
  );

  api.post(
    '/payments/:id/refund',
    {
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: Type.Object(
          { amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })), reason: Reason },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ refundId: Type.String(), status: Type.Literal('pending') }), ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const refundId = await rt.db.transaction().execute(async (trx) => {
        const p = await payments.lock(trx, { id });
        if (!p) throw new AppError('not-found', 'no such payment');
        if (p.status !== 'completed' && p.status !== 'partially_refunded')
          throw new AppError('not-refundable', `a ${p.status} payment cannot be refunded`);
        const left = await refundableLeft(trx, p);
        const amount = req.body.amount ?? left;
        if (left <= 0) throw new AppError('not-refundable', 'nothing is left to refund');
        if (amount > left) throw new AppError('refund-exceeds', `at most ${left} can still be refunded`);
        const rid = await requestRefund(trx, p, amount, 'operator', req.body.reason, actor(req));
        await audit(trx, {
          actor: actor(req),
          action: 'payment.refund',
          target: `payment:${id}`,
          reason: req.body.reason,
          before: { refundedAmount: p.refunded_amount, status: p.status },
          after: { refundId: rid, amount },
        });
        return rid;
      });
      return reply.status(202).send({ refundId, status: 'pending' as const });
    },
  );
};
