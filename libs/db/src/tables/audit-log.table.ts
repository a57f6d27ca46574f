import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt, Json } from './common.js';

export interface AuditLogTable {
  id: string;
  at: CreatedAt;
  actor: string;
  action: string;
  target: string;
  reason: string | null;
  before: Json | null;
  after: Json | null;
}
export type AuditRow = Selectable<AuditLogTable>;
export type NewAuditRow = Insertable<AuditLogTable>;
