import type { Insertable, Selectable, Updateable } from 'kysely';
import type { PaymentStatus } from '@billing/domain';
import type { CreatedAt, Generated, Timestamp, UpdatedAt } from './common.js';

export interface PaymentsTable {
  id: string;
  subscription_id: string;
  user_id: string;
  kind: 'initial' | 'renewal' | 'upgrade';
  amount: number;
  currency: string;
  status: PaymentStatus;
  refunded_amount: Generated<number>;
  failure_reason: string | null;
  /** Index k of the period paid for (period k = anchor + k·period). */
  period_index: number;
  /** Renewal attempts for one period are numbered; the initial payment is 0. */
  attempt: Generated<number>;
  period_start: Timestamp | null;
  period_end: Timestamp | null;
  provider: Generated<string>;
  provider_order_id: string | null;
  provider_capture_id: string | null;
  approval_url: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type PaymentRow = Selectable<PaymentsTable>;
export type NewPaymentRow = Insertable<PaymentsTable>;
export type PaymentUpdate = Updateable<PaymentsTable>;
