import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt, Generated, Json, Timestamp } from './common.js';

export interface DeadLettersTable {
  id: string;
  queue: string;
  message_id: string | null;
  type: string | null;
  exchange: string;
  routing_key: string;
  body: string;
  headers: Json<Record<string, unknown>>;
  error: string;
  attempts: number;
  dead_at: CreatedAt;
  replayed_at: Timestamp | null;
  replay_count: Generated<number>;
  discarded_at: Timestamp | null;
  discarded_by: string | null;
  discard_reason: string | null;
  /** Set when a replay of this message was dead-lettered again (the row is updated, not repeated). */
  died_again_at: Timestamp | null;
}
export type DeadLetterRow = Selectable<DeadLettersTable>;
export type NewDeadLetterRow = Insertable<DeadLettersTable>;
