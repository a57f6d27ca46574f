import { Type } from 'typebox';
import { sql } from 'kysely';
import { transact, type DeadLetterRow } from '@billing/db';
import { isUuid, keysetPage, Page } from '@billing/http-api';
import { DeadLetterNotReplayable, discardDeadLetter, replayDeadLetter } from '@billing/messaging';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { Accepted, DeadLetter, DeadLetterListQuery, errors, IdParams, Reason } from './schemas.js';

/** Open: waiting for an operator (never replayed, or dead again since its last replay). */
function statusOf(d: DeadLetterRow): 'open' | 'replayed' | 'discarded' {
  if (d.discarded_at) return 'discarded';
  if (d.replayed_at && (!d.died_again_at || d.died_again_at < d.replayed_at)) return 'replayed';
  return 'open';
}

function view(d: DeadLetterRow) {
  return {
    id: d.id,
    queue: d.queue,
    messageId: d.message_id,
    type: d.type,
    error: d.error,
    attempts: d.attempts,
    deadAt: d.dead_at.toISOString(),
    replayedAt: d.replayed_at?.toISOString() ?? null,
    replayCount: d.replay_count,
    diedAgainAt: d.died_again_at?.toISOString() ?? null,
    status: statusOf(d),
    discardedAt: d.discarded_at?.toISOString() ?? null,
    discardedBy: d.discarded_by,
    discardReason: d.discard_reason,
    body: d.body,
  };
}

const OptionalReason = Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false });

/** Messages that kept failing, with their error; an operator puts one back or discards it. */
export const deadLettersApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/dead-letters',
    {
      schema: { tags: ['admin'], querystring: DeadLetterListQuery, response: { 200: Page(DeadLetter), ...errors } },
    },
    async (req) => {
      let q = rt.db.selectFrom('dead_letters').selectAll();
      if (req.query.queue) q = q.where('queue', '=', req.query.queue);
      const replayedSince = sql<boolean>`replayed_at is not null and (died_again_at is null or died_again_at < replayed_at)`;
      if (req.query.status === 'discarded') q = q.where('discarded_at', 'is not', null);
      if (req.query.status === 'replayed') q = q.where('discarded_at', 'is', null).where(replayedSince);
      if (req.query.status === 'open')
        q = q.where('discarded_at', 'is', null).where(sql<boolean>`not (${replayedSince})`);
      const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor, 'dead_at');
      return { items: rows.map(view), nextCursor };
    },
  );

  api.get(
    '/dead-letters/:id',
    { schema: { tags: ['admin'], params: IdParams, response: { 200: DeadLetter, ...errors } } },
    async (req) => {
      const row = isUuid(req.params.id)
        ? await rt.db.selectFrom('dead_letters').selectAll().where('id', '=', req.params.id).executeTakeFirst()
        : undefined;
      if (!row) throw new AppError('not-found', 'no such dead letter');
      return view(row);
    },
  );

  const load = async (id: string) => {
    const row = isUuid(id)
      ? await rt.db.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst()
      : undefined;
    if (!row) throw new AppError('not-found', 'no such dead letter');
    return row;
  };
  const small = (d: DeadLetterRow) => ({
    status: statusOf(d),
    replayCount: d.replay_count,
    replayedAt: d.replayed_at?.toISOString() ?? null,
  });

  api.post(
    '/dead-letters/:id/replay',
    {
      // The body is optional: none at all reads as {}.
      preValidation: async (req) => {
        if (req.body === undefined) (req as { body: unknown }).body = {};
      },
      schema: { tags: ['admin'], params: IdParams, body: OptionalReason, response: { 202: Accepted, ...errors } },
    },
    async (req, reply) => {
      const before = await load(req.params.id);
      try {
        await replayDeadLetter(rt.db, req.params.id);
      } catch (err) {
        if (err instanceof DeadLetterNotReplayable)
          throw new AppError(/no dead letter/.test(err.message) ? 'not-found' : 'validation', err.message);
        throw err;
      }
      const after = await load(req.params.id);
      await transact(rt.db, (trx) =>
        audit(trx, {
          actor: actor(req),
          action: 'dead-letter.replay',
          target: `dead-letter:${req.params.id}`,
          reason: req.body.reason ?? null,
          before: small(before),
          after: small(after),
        }),
      );
      return reply.status(202).send({ status: 'replayed' });
    },
  );

  api.post(
    '/dead-letters/:id/discard',
    {
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: Type.Object({ reason: Reason }, { additionalProperties: false }),
        response: { 200: DeadLetter, ...errors },
      },
    },
    async (req) => {
      const before = await load(req.params.id);
      const changed = await discardDeadLetter(rt.db, req.params.id, actor(req), req.body.reason);
      const after = await load(req.params.id);
      if (changed)
        await transact(rt.db, (trx) =>
          audit(trx, {
            actor: actor(req),
            action: 'dead-letter.discard',
            target: `dead-letter:${req.params.id}`,
            reason: req.body.reason,
            before: small(before),
            after: small(after),
          }),
        );
      return view(after);
    },
  );
};
