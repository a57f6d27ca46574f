import type { Selectable } from 'kysely';
import type { CreatedAt, Json, Timestamp } from './common.js';

export interface IdempotencyKeysTable {
  user_id: string;
  key: string;
  fingerprint: string;
  state: 'in_flight' | 'done';
  response_status: number | null;
  response_body: Json | null;
  response_headers: Json<Record<string, string>> | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
}
export type IdempotencyKeyRow = Selectable<IdempotencyKeysTable>;
