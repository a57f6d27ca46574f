import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt, UpdatedAt } from './common.js';

/** A PayPal dispute against one of our captures, as PayPal last showed it (docs/disputes.md). */
export interface DisputesTable {
  id: string;
  provider_dispute_id: string;
  payment_id: string;
  capture_id: string;
  amount: number;
  currency: string;
  reason: string | null;
  /** PayPal's status: OPEN, WAITING_FOR_BUYER_RESPONSE, WAITING_FOR_SELLER_RESPONSE, UNDER_REVIEW, RESOLVED, OTHER. */
  status: string;
  /** INQUIRY, CHARGEBACK, PRE_ARBITRATION, ARBITRATION */
  stage: string | null;
  /** PayPal's `dispute_outcome.outcome_code`, once resolved. */
  outcome: string | null;
  result: 'open' | 'lost' | 'won';
  provider_updated_at: Date;
  resolved_at: Date | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type DisputeRow = Selectable<DisputesTable>;
export type NewDisputeRow = Insertable<DisputesTable>;

/** An operator's request about a dispute, sent to PayPal by the payment-worker. */
export interface DisputeActionsTable {
  id: string;
  dispute_id: string;
  action: 'accept_claim' | 'provide_evidence';
  note: string;
  status: 'requested' | 'sent' | 'refused';
  failure_reason: string | null;
  requested_by: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type DisputeActionRow = Selectable<DisputeActionsTable>;
