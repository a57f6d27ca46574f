import type { Insertable, Selectable, Updateable } from 'kysely';
import type { CreatedAt, Generated, Timestamp, UpdatedAt } from './common.js';

export interface SubscriptionsTable {
  id: string;
  user_id: string;
  plan_id: string;
  /** Copied from the plan at purchase: later plan changes never alter a subscription. */
  plan_name: string;
  role: string;
  amount: number;
  currency: string;
  period: string;
  status: 'pending' | 'trialing' | 'active' | 'past_due' | 'paused' | 'cancelled' | 'expired';
  /** Start of period `anchor_index`: set when the first payment completes, moved by a change of period length. */
  anchor_at: Timestamp | null;
  /** Periods k ≥ anchor_index start at anchor_at + (k − anchor_index)·period. */
  anchor_index: Generated<number>;
  /** A downgrade waiting for the period end (docs/api.md, plan changes). */
  scheduled_plan_id: string | null;
  scheduled_change_at: Timestamp | null;
  /** Why only the buyer can help the next charge (docs/api.md, …/payment-method), while no new method is saved. */
  payment_method_required: 'no_payment_method' | 'payment_token_deleted' | 'payer_action_required' | null;
  /** When a subscription waiting for a new method expires (the last dunning retry's time). */
  payment_method_deadline: Timestamp | null;
  /** The plan's trial, copied at checkout (docs/api.md, free trials); null: a paid checkout. */
  trial_period: string | null;
  /** The trial's window, set when the buyer's wallet is saved; the first period starts at trial_end. */
  trial_start: Timestamp | null;
  trial_end: Timestamp | null;
  /** When `subscription.trial_will_end` is due (3 days before the end, half the trial if under 6 days), and when it was sent. */
  trial_notice_at: Timestamp | null;
  trial_notice_sent_at: Timestamp | null;
  /** The `paid_through` the last `subscription.renewal_upcoming` was sent for (docs/scheduler.md, renewal reminders). */
  renewal_reminded_for: Timestamp | null;
  /** End of the last period paid for (periods are anchored on `anchor_at`). */
  paid_through: Timestamp | null;
  cancel_at_period_end: Generated<boolean>;
  /** Why the buyer cancelled (docs/api.md, cancel), when they said. */
  cancel_reason: string | null;
  cancelled_at: Timestamp | null;
  /** docs/api.md, retention offer: when it was made (once) and accepted. */
  retention_offered_at: Timestamp | null;
  retention_accepted_at: Timestamp | null;
  /** docs/api.md, pause: the pause in effect (both null unless `paused`). */
  paused_at: Timestamp | null;
  resumes_at: Timestamp | null;
  expired_at: Timestamp | null;
  vault_id: string | null;
  /** The user held the role before buying, per the roles read at checkout (docs/auth.md). */
  role_held_before: Generated<boolean>;
  approval_url: string | null;
  dunning_started_at: Timestamp | null;
  dunning_attempts: Generated<number>;
  next_retry_at: Timestamp | null;
  version: Generated<number>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type NewSubscriptionRow = Insertable<SubscriptionsTable>;
export type SubscriptionUpdate = Updateable<SubscriptionsTable>;

/** docs/api.md, pause: every pause of a subscription, kept. */
export interface SubscriptionPausesTable {
  id: string;
  subscription_id: string;
  paused_at: Date;
  /** When it was to end (the scheduler resumes it then). */
  resumes_at: Date;
  resumed_at: Timestamp | null;
  paused_by: string;
  resumed_by: string | null;
  created_at: CreatedAt;
}
