import { transact } from '@billing/db';
import { Type } from 'typebox';
import {
  loadReceipt,
  openDispute,
  payments,
  receiptHtml,
  receiptPdf,
  refundableLeft,
  requestRefund,
} from '@billing/billing-core';
import { isUuid, keysetPage, Page, paymentView } from '@billing/http-api';
import { toPayPalAmount } from '@billing/domain';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import { disputesOf } from './disputes.js';
import type { AdminPlugin } from './index.js';
import {
  AdminPayment,
  auditView,
  errors,
  IdParams,
  instant,
  PaymentDetail,
  PaymentListQuery,
  Reason,
} from './schemas.js';

/** Payments of all users; one with its PayPal events and refunds; an operator's refund. */
export const paymentsApi: AdminPlugin = async (api, { rt, sellerName }) => {
  api.get(
    '/payments',
    {
      schema: { tags: ['admin'], querystring: PaymentListQuery, response: { 200: Page(AdminPayment), ...errors } },
    },
    async (req) => {
      const { userId, status, planId } = req.query;
      const [from, to] = [instant(req.query.from), instant(req.query.to)];
      let q = rt.db.selectFrom('payments').selectAll();
      if (userId) q = q.where('user_id', '=', userId);
      if (status) q = q.where('status', '=', status);
      if (from) q = q.where('created_at', '>=', from);
      if (to) q = q.where('created_at', '<', to);
      if (planId)
        q = q.where('subscription_id', 'in', (db) =>
          db.selectFrom('subscriptions').select('id').where('plan_id', '=', planId),
        );
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
      const [events, refunds, sub, auditRows, left, docs, disputes] = await Promise.all([
        rt.db
          .selectFrom('provider_events')
          .select(['event_type', 'provider_event_id', 'received_at', 'outcome'])
          .where('payment_id', '=', id)
          .orderBy('received_at')
          .execute(),
        rt.db.selectFrom('refunds').selectAll().where('payment_id', '=', id).orderBy('created_at').execute(),
        rt.db
          .selectFrom('subscriptions')
          .select(['plan_id', 'status'])
          .where('id', '=', p.subscription_id)
          .executeTakeFirstOrThrow(),
        rt.db
          .selectFrom('audit_log')
          .selectAll()
          .where('target', '=', `payment:${id}`)
          .orderBy('at', 'desc')
          .limit(100)
          .execute(),
        p.status === 'completed' || p.status === 'partially_refunded' ? refundableLeft(rt.db, p) : 0,
        rt.db.selectFrom('receipts').selectAll().where('payment_id', '=', id).orderBy('issued_at').execute(),
        disputesOf(rt.db, { paymentId: id }),
      ]);
      return {
        ...paymentView(p),
        userId: p.user_id,
        providerOrderId: p.provider_order_id,
        providerCaptureId: p.provider_capture_id,
        planId: sub.plan_id,
        subscriptionStatus: sub.status,
        refundableAmount: Math.max(0, left),
        receiptNumber: docs.find((d) => d.kind === 'receipt')?.number ?? null,
        creditNotes: docs
          .filter((d) => d.kind === 'credit_note')
          .map((d) => ({
            number: d.number,
            refundId: d.refund_id,
            amount: Number(d.amount),
            issuedAt: d.issued_at.toISOString(),
          })),
        audit: auditRows.map(auditView),
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
        disputes,
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
      const refundId = await transact(rt.db, async (trx) => {
        const p = await payments.lock(trx, { id });
        if (!p) throw new AppError('not-found', 'no such payment');
        if (p.status !== 'completed' && p.status !== 'partially_refunded')
          throw new AppError('not-refundable', `a ${p.status} payment cannot be refunded`);
        const disputed = await openDispute(trx, p.id);
        if (disputed)
          throw new AppError(
            'payment-disputed',
            `the payment is disputed at PayPal (${disputed.provider_dispute_id}), which refuses refunds meanwhile; accept the claim to refund the buyer`,
          );
        const left = await refundableLeft(trx, p);
        const amount = req.body.amount ?? left;
        if (left <= 0) throw new AppError('not-refundable', 'nothing is left to refund');
        if (amount > left)
          throw new AppError(
            'refund-exceeds',
            `at most ${toPayPalAmount(left, p.currency).value} ${p.currency} (${left} in minor units) can still be refunded`,
          );
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

  api.get(
    '/payments/:id/receipt',
    {
      schema: {
        tags: ['admin'],
        params: IdParams,
        response: {
          200: {
            description: 'the receipt',
            content: { 'text/html': { schema: {} }, 'application/pdf': { schema: {} } },
          },
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const view = isUuid(req.params.id) ? await loadReceipt(rt.db, req.params.id) : null;
      if (!view) throw new AppError('not-found', 'no receipt: no such payment, or it has not completed');
      if (/application\/pdf/.test(req.headers.accept ?? ''))
        return reply
          .type('application/pdf')
          .header('content-disposition', `inline; filename="${view.receipt.number}.pdf"`)
          .send((await receiptPdf(view, sellerName)) as never);
      return reply.type('text/html; charset=utf-8').send(receiptHtml(view, sellerName) as never);
    },
  );
};
