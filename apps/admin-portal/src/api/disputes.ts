import { Type, type Static } from 'typebox';
import type { Kysely } from 'kysely';
import { requestDisputeAction } from '@billing/billing-core';
import type { Database } from '@billing/db';
import { transact } from '@billing/db';
import { isUuid } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { Dispute, DisputeAction, errors, IdParams } from './schemas.js';

/** The disputes of some payments (or the open ones of all), each with its operators' actions, newest first. */
export async function disputesOf(
  db: Kysely<Database>,
  where: { paymentId?: string; open?: boolean },
): Promise<Static<typeof Dispute>[]> {
  let q = db
    .selectFrom('disputes')
    .innerJoin('payments', 'payments.id', 'disputes.payment_id')
    .selectAll('disputes')
    .select('payments.user_id');
  if (where.paymentId) q = q.where('disputes.payment_id', '=', where.paymentId);
  if (where.open) q = q.where('disputes.result', '=', 'open');
  const rows = await q.orderBy('disputes.created_at', 'desc').limit(500).execute();
  const actions = rows.length
    ? await db
        .selectFrom('dispute_actions')
        .selectAll()
        .where(
          'dispute_id',
          'in',
          rows.map((r) => r.id),
        )
        .orderBy('created_at')
        .execute()
    : [];
  return rows.map((d) => ({
    id: d.id,
    providerDisputeId: d.provider_dispute_id,
    paymentId: d.payment_id,
    userId: d.user_id,
    amount: Number(d.amount),
    currency: d.currency,
    reason: d.reason,
    status: d.status,
    stage: d.stage,
    outcome: d.outcome,
    result: d.result,
    createdAt: d.created_at.toISOString(),
    updatedAt: d.updated_at.toISOString(),
    resolvedAt: d.resolved_at?.toISOString() ?? null,
    actions: actions
      .filter((a) => a.dispute_id === d.id)
      .map((a) => ({
        id: a.id,
        action: a.action,
        note: a.note,
        status: a.status,
        failureReason: a.failure_reason,
        requestedBy: a.requested_by,
        createdAt: a.created_at.toISOString(),
      })),
  }));
}

const REFUSALS = {
  'not-found': ['not-found', 'no such dispute'],
  'dispute-resolved': ['dispute-resolved', 'the dispute is resolved: PayPal takes no more answers to it'],
  'dispute-action-pending': [
    'dispute-action-pending',
    'an earlier answer to this dispute has not reached PayPal yet; try again once it has',
  ],
} as const;

/** docs/disputes.md: the open disputes (or all), and an operator's answer to one: accept the claim, or evidence. */
export const disputesApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/disputes',
    {
      schema: {
        tags: ['admin'],
        querystring: Type.Object({ open: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Dispute) }), ...errors },
      },
    },
    async (req) => ({ items: await disputesOf(rt.db, { open: req.query.open ?? false }) }),
  );

  for (const [path, action] of [
    ['accept', 'accept_claim'],
    ['evidence', 'provide_evidence'],
  ] as const)
    api.post(
      `/disputes/:id/${path}`,
      {
        schema: {
          tags: ['admin'],
          params: IdParams,
          body: Type.Object(
            { note: Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S' }) },
            { additionalProperties: false },
          ),
          response: { 202: Type.Pick(DisputeAction, ['id', 'action', 'status']), ...errors },
        },
      },
      async (req, reply) => {
        if (!isUuid(req.params.id)) throw new AppError('not-found', 'no such dispute');
        const row = await transact(rt.db, async (trx) => {
          const r = await requestDisputeAction(trx, req.params.id, action, req.body.note, actor(req));
          if (typeof r === 'string') throw new AppError(REFUSALS[r][0], REFUSALS[r][1]);
          await audit(trx, {
            actor: actor(req),
            action: action === 'accept_claim' ? 'dispute.accept' : 'dispute.evidence',
            target: `dispute:${req.params.id}`,
            reason: req.body.note,
            before: null,
            after: { actionId: r.id, action },
          });
          return r;
        });
        return reply.status(202).send({ id: row.id, action: row.action, status: row.status });
      },
    );
};
