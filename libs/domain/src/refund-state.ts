export const REFUND_STATUSES = ['requested', 'pending', 'completed', 'failed'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/**
 * What happens to a refund (docs/api.md, refunds): ours is `requested`, then sent to PayPal, which
 * completes it at once, holds it `pending` (completed later, by its answer or its webhook), or
 * refuses it; a refund made at PayPal outside the system is recorded `completed` as it arrives.
 */
export type RefundEvent =
  /** PayPal answered the refund with PENDING. */
  | { type: 'provider_pending' }
  /** PayPal completed it (its answer or PAYMENT.CAPTURE.REFUNDED). */
  | { type: 'provider_completed' }
  /** PayPal refused it, or there is no capture to refund. */
  | { type: 'failed' };

export interface RefundTransition {
  status: RefundStatus;
}

/** The refund machine: the next status, or null when the event changes nothing (stale or repeated). */
export function applyRefundEvent(status: RefundStatus, event: RefundEvent): RefundTransition | null {
  switch (event.type) {
    case 'provider_pending':
      return status === 'requested' ? { status: 'pending' } : null;
    case 'provider_completed':
      // PayPal's word that the money went back is a fact, even after we recorded a failure.
      return status === 'completed' ? null : { status: 'completed' };
    case 'failed':
      return status === 'requested' || status === 'pending' ? { status: 'failed' } : null;
  }
}

/** A refund still under way: it counts against what is left to refund. */
export function refundOpen(status: RefundStatus): boolean {
  return status === 'requested' || status === 'pending';
}
