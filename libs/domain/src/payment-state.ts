export const PAYMENT_STATUSES = [
  'created',
  'pending',
  'approved',
  'completed',
  'failed',
  'cancelled',
  'refunded',
  'partially_refunded',
  'reversed',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** docs/api.md's failure reasons; a payment the buyer abandoned or PayPal voided has none. */
export type FailureReason =
  | 'declined'
  | 'provider_error'
  | 'capture_mismatch'
  | 'checkout_expired'
  | 'no_payment_method'
  | 'replaced';

export type PaymentEvent =
  | { type: 'order_created' }
  | { type: 'approved' }
  | { type: 'capture_completed' }
  | { type: 'capture_pending' }
  | { type: 'capture_declined' }
  | { type: 'capture_mismatch' }
  | { type: 'provider_failed'; reason: 'provider_error' | 'no_payment_method' }
  | { type: 'voided' }
  | { type: 'buyer_cancelled' }
  | { type: 'checkout_expired' }
  | { type: 'superseded' }
  /** The subscription ended before this payment went anywhere: it is not taken. */
  | { type: 'subscription_ended' }
  /** PayPal captured money for a period another payment of ours already paid. */
  | { type: 'duplicate_capture' }
  | { type: 'refund_recorded'; amount: number; refundedAmount: number }
  /** A period a coupon made free (docs/api.md, coupons at checkout): paid without a PayPal charge. */
  | { type: 'nothing_due' }
  | { type: 'reversed' };

/** Side effects the caller must carry out after storing the new state. */
export type PaymentEffect = 'capture' | 'activate' | 'refund_in_full';

export interface PaymentTransition {
  status: PaymentStatus;
  failureReason?: FailureReason;
  effects: PaymentEffect[];
}

/** Statuses of a payment still waiting for PayPal or the buyer: not settled either way. */
export const OPEN_PAYMENT_STATUSES = ['created', 'pending', 'approved'] as const satisfies readonly PaymentStatus[];
const OPEN: readonly PaymentStatus[] = OPEN_PAYMENT_STATUSES;
const PAID: readonly PaymentStatus[] = ['completed', 'partially_refunded', 'refunded'];

/** Statuses of a payment that holds money for its period (one refunded in full or charged back no longer does). */
export const HOLDING_MONEY = ['completed', 'partially_refunded'] as const satisfies readonly PaymentStatus[];

const isOpen = (s: PaymentStatus) => OPEN.includes(s);

/**
 * docs/webhooks.md's payment column as a pure function. `null` means the event is stale or repeated
 * for this state: a no-op.
 */
export function applyPaymentEvent(status: PaymentStatus, event: PaymentEvent): PaymentTransition | null {
  switch (event.type) {
    case 'order_created':
      return status === 'created' ? { status: 'pending', effects: [] } : null;
    case 'approved':
      return status === 'created' || status === 'pending' ? { status: 'approved', effects: ['capture'] } : null;
    case 'capture_pending':
      return status === 'created' || status === 'pending' ? { status: 'approved', effects: [] } : null;
    case 'capture_completed':
      if (isOpen(status)) return { status: 'completed', effects: ['activate'] };
      if (status === 'failed' || status === 'cancelled') return { status, effects: ['refund_in_full'] };
      return null;
    case 'capture_mismatch':
      if (isOpen(status)) return { status: 'failed', failureReason: 'capture_mismatch', effects: ['refund_in_full'] };
      return null;
    case 'capture_declined':
      return isOpen(status) ? { status: 'failed', failureReason: 'declined', effects: [] } : null;
    case 'provider_failed':
      return isOpen(status) ? { status: 'failed', failureReason: event.reason, effects: [] } : null;
    case 'voided':
      return isOpen(status) ? { status: 'cancelled', effects: [] } : null;
    case 'buyer_cancelled':
      return status === 'created' || status === 'pending' ? { status: 'cancelled', effects: [] } : null;
    case 'checkout_expired':
      return status === 'created' || status === 'pending'
        ? { status: 'cancelled', failureReason: 'checkout_expired', effects: [] }
        : null;
    case 'duplicate_capture':
      return isOpen(status) ? { status: 'cancelled', failureReason: 'replaced', effects: ['refund_in_full'] } : null;
    case 'subscription_ended':
      return status === 'created' || status === 'pending' ? { status: 'cancelled', effects: [] } : null;
    case 'superseded':
      return status === 'created' || status === 'pending'
        ? { status: 'cancelled', failureReason: 'replaced', effects: [] }
        : null;
    case 'refund_recorded': {
      if (!PAID.includes(status)) return null;
      const next: PaymentStatus =
        event.refundedAmount >= event.amount ? 'refunded' : event.refundedAmount > 0 ? 'partially_refunded' : status;
      return next === status ? null : { status: next, effects: [] };
    }
    case 'reversed':
      return PAID.includes(status) ? { status: 'reversed', effects: [] } : null;
    case 'nothing_due':
      return status === 'created' ? { status: 'completed', effects: ['activate'] } : null;
  }
}
