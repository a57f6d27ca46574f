import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt, Generated, Json, Timestamp } from './common.js';

export interface OutboxTable {
  /** The row's own id; the message id is the envelope's `id` (a replay reuses it). */
  id: string;
  seq: Generated<string>;
  exchange: string;
  routing_key: string;
  type: string;
  envelope: Json;
  headers: Json<Record<string, unknown>>;
  created_at: CreatedAt;
  published_at: Timestamp | null;
  attempts: Generated<number>;
  last_error: string | null;
  /** The relay that publishes the row at once (its process's pool tags what it writes); null: any relay's poll. */
  owner: Generated<string | null>;
}
export type OutboxRow = Selectable<OutboxTable>;
export type NewOutboxRow = Insertable<OutboxTable>;
