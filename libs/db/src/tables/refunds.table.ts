import type { Insertable, Selectable, Updateable } from 'kysely';
import type { CreatedAt, UpdatedAt } from './common.js';

export interface RefundsTable {
  id: string;
  payment_id: string;
  amount: number;
  currency: string;
  /** requested → completed | failed; `external` rows record refunds made outside this system. */
  status: 'requested' | 'pending' | 'completed' | 'failed';
  origin: 'user_cancel' | 'operator' | 'capture_mismatch' | 'late_capture' | 'external';
  reason: string | null;
  requested_by: string | null;
  provider_refund_id: string | null;
  failure_reason: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type RefundRow = Selectable<RefundsTable>;
export type NewRefundRow = Insertable<RefundsTable>;
export type RefundUpdate = Updateable<RefundsTable>;
