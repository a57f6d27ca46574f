import type { Selectable } from 'kysely';
import type { CreatedAt } from './common.js';

/** A receipt (a completed payment) or a credit note (a completed refund): issued once, never changed. */
export interface ReceiptsTable {
  id: string;
  /** `R-2026-USD-000123`, `C-2026-USD-000007`: without gaps per kind, currency and year. */
  number: string;
  kind: 'receipt' | 'credit_note';
  payment_id: string;
  refund_id: string | null;
  user_id: string;
  amount: number;
  currency: string;
  /** What was paid for (plan and period) or refunded, as it was when issued. */
  description: string;
  year: number;
  sequence: number;
  issued_at: CreatedAt;
}
export type ReceiptRow = Selectable<ReceiptsTable>;

export interface DocumentCountersTable {
  kind: 'R' | 'C';
  currency: string;
  /** What was paid for (plan and period) or refunded, as it was when issued. */
  description: string;
  year: number;
  last: number;
}
