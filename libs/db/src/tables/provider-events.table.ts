import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt, Generated, Json, Timestamp } from './common.js';

export interface ProviderEventsTable {
  id: string;
  provider: string;
  /** The provider's own event id: unique per provider, so a redelivery stores nothing. */
  provider_event_id: string;
  event_type: string;
  resource_type: string | null;
  resource_id: string | null;
  payment_id: string | null;
  payload: Json;
  received_at: CreatedAt;
  processed_at: Timestamp | null;
  outcome: string | null;
  /** Times the scheduler handed the event to the payment-worker again, and the last time. */
  sweeps: Generated<number>;
  swept_at: Timestamp | null;
}
export type ProviderEventRow = Selectable<ProviderEventsTable>;
export type NewProviderEventRow = Insertable<ProviderEventsTable>;
