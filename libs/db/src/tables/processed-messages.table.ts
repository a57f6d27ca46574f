import type { CreatedAt } from './common.js';

/** (consumer, message id) of every message a consumer committed: processing exactly once. */
export interface ProcessedMessagesTable {
  consumer: string;
  message_id: string;
  processed_at: CreatedAt;
}
