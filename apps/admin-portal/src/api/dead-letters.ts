import { Type } from 'typebox';
import { isUuid, Page } from '@billing/http-api';
import { DeadLetterNotReplayable, replayDeadLetter } from '@billing/messaging';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { Accepted, DeadLetter, errors, IdParams } from './schemas.js';

/** Messages that kept failing, with their error; an operator puts one back. */
export const deadLettersApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/dead-letters',
    {
      schema: {
        tags: ['admin'],
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }),
        response: { 200: Page(DeadLetter), ...errors },
      },
    },
    async (req) => {
      const rows = await rt.db
        .selectFrom('dead_letters')
        .selectAll()
        .orderBy('dead_at', 'desc')
        .limit(req.query.limit ?? 50)
        .execute();
      return {
        items: rows.map((d) => ({
          id: d.id,
          queue: d.queue,
          messageId: d.message_id,
          type: d.type,
          error: d.error,
          attempts: d.attempts,
          deadAt: d.dead_at.toISOString(),
          replayedAt: d.replayed_at?.toISOString() ?? null,
          replayCount: d.replay_count,
          body: d.body,
        })),
        nextCursor: null,
      };
    },
  );

  api.post(
    '/dead-letters/:id/replay',
    { schema: { tags: ['admin'], params: IdParams, response: { 202: Accepted, ...errors } } },
    async (req, reply) => {
      if (!isUuid(req.params.id)) throw new AppError('not-found', 'no such dead letter');
      try {
        await replayDeadLetter(rt.db, req.params.id);
      } catch (err) {
        if (err instanceof DeadLetterNotReplayable)
          throw new AppError(/no dead letter/.test(err.message) ? 'not-found' : 'validation', err.message);
        throw err;
      }
      await rt.db.transaction().execute((trx) =>
        audit(trx, {
          actor: actor(req),
          action: 'dead-letter.replay',
          target: `dead-letter:${req.params.id}`,
          reason: null,
          before: null,
          after: null,
        }),
      );
      return reply.status(202).send({ status: 'replayed' });
    },
  );
};
