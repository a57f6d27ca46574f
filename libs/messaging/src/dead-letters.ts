import { sql, type Kysely } from 'kysely';
import type { Envelope } from '@billing/contracts';
import type { Database } from '@billing/db';
import { enqueueEnvelope } from './outbox.js';

/** On a replayed message: the dead letter it came from (a second death updates that row). */
export const REPLAY_OF_HEADER = 'x-billing-replay-of';

export class DeadLetterNotReplayable extends Error {
  override readonly name = 'DeadLetterNotReplayable';
}

/**
 * Puts a dead letter back on its queue through the outbox (so the replay is as durable as any
 * message), with its attempt count reset. The row stays, marked as replayed.
 */
export async function replayDeadLetter(db: Kysely<Database>, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('dead_letters').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw new DeadLetterNotReplayable(`no dead letter ${id}`);
    if (row.discarded_at) throw new DeadLetterNotReplayable(`dead letter ${id} was discarded and cannot be replayed`);
    let envelope: Envelope;
    try {
      envelope = JSON.parse(row.body) as Envelope;
    } catch {
      throw new DeadLetterNotReplayable(`dead letter ${id} is not JSON and cannot be replayed`);
    }
    await enqueueEnvelope(trx, '', row.queue, envelope, { [REPLAY_OF_HEADER]: id });
    await trx
      .updateTable('dead_letters')
      .set({ replayed_at: sql`now()`, replay_count: sql`replay_count + 1` })
      .where('id', '=', id)
      .execute();
  });
}

/**
 * An operator's judgement that a dead letter is not to be replayed: the row stays, marked with
 * who, when and why. Discarding one already discarded changes nothing (false).
 */
export async function discardDeadLetter(
  db: Kysely<Database>,
  id: string,
  by: string,
  reason: string,
): Promise<boolean> {
  const exists = await db.selectFrom('dead_letters').select('id').where('id', '=', id).executeTakeFirst();
  if (!exists) throw new DeadLetterNotReplayable(`no dead letter ${id}`);
  const r = await db
    .updateTable('dead_letters')
    .set({ discarded_at: sql`now()`, discarded_by: by, discard_reason: reason })
    .where('id', '=', id)
    .where('discarded_at', 'is', null)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}
