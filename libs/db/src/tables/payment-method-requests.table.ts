import type { Selectable } from 'kysely';
import type { CreatedAt, UpdatedAt } from './common.js';

/** A buyer's replacement of a subscription's payment method: PayPal's setup token, then its payment token. */
export interface PaymentMethodRequestsTable {
  id: string;
  subscription_id: string;
  user_id: string;
  setup_token_id: string;
  status: 'pending' | 'completed' | 'cancelled' | 'failed';
  payment_token_id: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type PaymentMethodRequestRow = Selectable<PaymentMethodRequestsTable>;
