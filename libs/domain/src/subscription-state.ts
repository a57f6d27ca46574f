export const SUBSCRIPTION_STATUSES = [
  'pending',
  'trialing',
  'active',
  'past_due',
  'paused',
  'cancelled',
  'expired',
] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

/** The statuses of a live subscription: it grants its role and falls due for renewal (docs/api.md). */
export const LIVE_STATUSES = ['trialing', 'active', 'past_due'] as const satisfies readonly SubscriptionStatus[];

/** Whether a subscription in `status` is live (trialing, active or past_due). */
export function isLive(status: SubscriptionStatus): boolean {
  return (LIVE_STATUSES as readonly SubscriptionStatus[]).includes(status);
}

export interface SubscriptionState {
  status: SubscriptionStatus;
  cancelAtPeriodEnd: boolean;
}

export type SubscriptionEvent =
  | { type: 'initial_payment_completed' }
  | { type: 'initial_payment_failed' }
  /** docs/api.md, free trials: a trial checkout's wallet is saved; the trial starts with the role granted. */
  | { type: 'trial_started' }
  | { type: 'renewal_completed' }
  | { type: 'renewal_failed' }
  | { type: 'dunning_exhausted' }
  | { type: 'cancel_at_period_end' }
  | { type: 'cancel_immediately' }
  | { type: 'resume'; periodEnded: boolean; hasPaymentMethod: boolean }
  | { type: 'period_ended' }
  | { type: 'payment_method_removed' }
  | { type: 'current_payment_lost' }
  /** A newer purchase for the same role replaces an unfinished checkout or a past_due subscription. */
  | { type: 'replaced' }
  /** docs/api.md, pause: an active subscription stops for a while (no charge, no role). */
  | { type: 'pause' }
  /** The pause ends (the buyer, an operator, or its `resumesAt`). */
  | { type: 'unpause' };

/** What the caller must do besides storing the new state. */
export type SubscriptionEffect = 'grant_starts' | 'grant_ends' | 'refund_payment' | 'refund_unused';

export interface SubscriptionTransition extends SubscriptionState {
  effects: SubscriptionEffect[];
}

export class NotResumableError extends Error {
  override readonly name = 'NotResumableError';
  readonly code = 'not-resumable';
}

/** A subscription that grants its role: in its trial, paid, or in dunning. */
const LIVE = (s: SubscriptionStatus) => s === 'trialing' || s === 'active' || s === 'past_due';
const ENDED = (s: SubscriptionStatus) => s === 'cancelled' || s === 'expired';

/**
 * docs/api.md, docs/webhooks.md's subscription column as a pure function. `null` means no change (a stale or
 * repeated event). `resume` on a subscription that cannot resume throws NotResumableError.
 */
export function applySubscriptionEvent(
  state: SubscriptionState,
  event: SubscriptionEvent,
): SubscriptionTransition | null {
  const { status, cancelAtPeriodEnd } = state;
  const to = (s: SubscriptionStatus, flag: boolean, effects: SubscriptionEffect[] = []) => ({
    status: s,
    cancelAtPeriodEnd: flag,
    effects,
  });
  switch (event.type) {
    case 'initial_payment_completed':
      if (status === 'pending') return to('active', false, ['grant_starts']);
      return ENDED(status) ? to(status, cancelAtPeriodEnd, ['refund_payment']) : null;
    case 'initial_payment_failed':
      return status === 'pending' ? to('cancelled', false) : null;
    case 'trial_started':
      return status === 'pending' ? to('trialing', false, ['grant_starts']) : null;
    case 'renewal_completed':
      // A trial's first charge (at the trial's end) is charged and recorded like a renewal.
      if (status === 'past_due' || status === 'trialing') return to('active', cancelAtPeriodEnd);
      if (status === 'active') return null;
      return ENDED(status) ? to(status, cancelAtPeriodEnd, ['refund_payment']) : null;
    case 'renewal_failed':
      return status === 'active' || status === 'trialing' ? to('past_due', cancelAtPeriodEnd) : null;
    case 'dunning_exhausted':
      return LIVE(status) ? to('expired', cancelAtPeriodEnd, ['grant_ends']) : null;
    case 'cancel_at_period_end':
      if (status === 'pending') return to('cancelled', false);
      return (LIVE(status) || status === 'paused') && !cancelAtPeriodEnd ? to(status, true) : null;
    case 'cancel_immediately':
      if (status === 'pending') return to('cancelled', false);
      // A paused subscription's grant ended at the pause.
      if (status === 'paused') return to('cancelled', cancelAtPeriodEnd, ['refund_unused']);
      return LIVE(status) ? to('cancelled', cancelAtPeriodEnd, ['grant_ends', 'refund_unused']) : null;
    case 'resume':
      if ((status === 'active' || status === 'trialing') && !cancelAtPeriodEnd) return null;
      if ((status === 'active' || status === 'trialing') && !event.periodEnded && event.hasPaymentMethod)
        return to(status, false);
      throw new NotResumableError(
        'only an active (or trialing) subscription set to end at its period end, whose period has not ended and which has a payment method, can resume',
      );
    case 'period_ended':
      return LIVE(status) && cancelAtPeriodEnd ? to('expired', true, ['grant_ends']) : null;
    case 'payment_method_removed':
      return (LIVE(status) || status === 'paused') && !cancelAtPeriodEnd ? to(status, true) : null;
    case 'current_payment_lost':
      if (status === 'paused') return to('cancelled', cancelAtPeriodEnd);
      return LIVE(status) ? to('cancelled', cancelAtPeriodEnd, ['grant_ends']) : null;
    case 'replaced':
      if (status === 'pending') return to('cancelled', false);
      return status === 'past_due' ? to('cancelled', cancelAtPeriodEnd, ['grant_ends']) : null;
    case 'pause':
      return status === 'active' && !cancelAtPeriodEnd ? to('paused', false, ['grant_ends']) : null;
    case 'unpause':
      return status === 'paused' ? to('active', cancelAtPeriodEnd, ['grant_starts']) : null;
  }
}
