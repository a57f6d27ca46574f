import { sql, type Kysely } from 'kysely';
import type { Envelope } from '@billing/contracts';
import type { Database } from '@billing/db';
import { enqueueEnvelope } from './outbox.js';

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
    let envelope: Envelope;
    try {
      envelope = JSON.parse(row.body) as Envelope;
    } catch {
      throw new DeadLetterNotReplayable(`dead letter ${id} is not JSON and cannot be replayed`);
    }
    await enqueueEnvelope(trx, '', row.queue, envelope, { 'x-billing-replay-of': id });
    await trx
      .updateTable('dead_letters')
      .set({ replayed_at: sql`now()`, replay_count: sql`replay_count + 1` })
      .where('id', '=', id)
      .execute();
  });
}
