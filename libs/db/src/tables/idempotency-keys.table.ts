import type { Selectable } from 'kysely';
import type { Json, Timestamp, UpdatedAt } from './common.js';

export interface IdempotencyKeysTable {
  user_id: string;
  key: string;
  fingerprint: string;
  state: 'in_flight' | 'done';
  response_status: number | null;
  response_body: Json | null;
  response_headers: Json<Record<string, string>> | null;
  /** When the current request with this key started (taken over when abandoned or expired). */
  created_at: UpdatedAt;
  expires_at: Timestamp;
}
export type IdempotencyKeyRow = Selectable<IdempotencyKeysTable>;
