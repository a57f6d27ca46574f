import type { Transaction } from 'kysely';
import { SubscriptionCancelled } from '@billing/contracts';
import type { Database, PaymentRow, SubscriptionRow } from '@billing/db';
import { HOLDING_MONEY } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { cancelledMessage } from './cancel.js';
import { endSubscriptionGrant } from './grants.js';
import { payments } from './payments.js';
import { refundableLeft, requestRefund } from './refunds.js';
import { subscriptions } from './subscriptions.js';

// The use case "the money of a payment is gone" (docs/webhooks.md): a chargeback, or a refund
// made at PayPal for the whole payment; the period it paid goes with it.

type Tx = Transaction<Database>;

/** A chargeback (the payment `p` locked by the caller): the money is gone, and with it the period it paid. */
export async function chargedBack(
  trx: Tx,
  p: PaymentRow,
  reason = 'chargeback',
): Promise<'no-op' | 'reversed' | 'reversed; subscription cancelled'> {
  const t = await payments.transition(trx, p, { type: 'reversed' });
  if (!t) return 'no-op';
  return (await periodLost(trx, p, reason)) ? 'reversed; subscription cancelled' : 'reversed';
}

/**
 * docs/webhooks.md: losing the payment for the period in effect cancels the subscription at once,
 * and a renewal already paid for a later period comes back whole; losing a renewal paid ahead
 * leaves that period unpaid (no free period, no silent charge again: the subscription ends at its
 * period end unless the buyer resumes); an older period's payment changes nothing more. Whether
 * the subscription was cancelled.
 */
export async function periodLost(trx: Tx, p: PaymentRow, reason: string): Promise<boolean> {
  const now = new Date();
  if (!p.period_start || !p.period_end) return false;
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  // While paused, time stands at the pause: the payments' periods move only when it resumes, so the
  // period that was in effect at `paused_at` is the one the subscription would resume on.
  const at = sub.status === 'paused' && sub.paused_at ? sub.paused_at : now;
  if (p.period_end <= at) return false;
  if (p.period_start > at) {
    await paidAheadLost(trx, sub, p.period_start);
    return false;
  }
  const s = await subscriptions.transition(
    trx,
    sub,
    { type: 'current_payment_lost' },
    { cancelled_at: now, next_retry_at: null },
  );
  if (!s) return false;
  await endSubscriptionGrant(trx, sub, reason);
  let refunded = 0;
  const ahead = await trx
    .selectFrom('payments')
    .selectAll()
    .where('subscription_id', '=', sub.id)
    .where('id', '!=', p.id)
    .where('status', 'in', [...HOLDING_MONEY])
    .where('period_start', '>', at)
    .forUpdate()
    .execute();
  for (const a of ahead) {
    const left = await refundableLeft(trx, a);
    if (left <= 0) continue;
    await requestRefund(
      trx,
      a,
      left,
      'user_cancel',
      `the subscription ended (${reason}): a period paid ahead comes back`,
    );
    refunded += left;
  }
  await enqueue(trx, SubscriptionCancelled, cancelledMessage(sub, now, refunded, now));
  return true;
}

/** A renewal paid ahead is lost: paid only up to its period's start, and renewals stop. */
async function paidAheadLost(trx: Tx, sub: SubscriptionRow, periodStart: Date): Promise<void> {
  const paidThrough = sub.paid_through && sub.paid_through > periodStart ? periodStart : sub.paid_through;
  const s = await subscriptions.transition(
    trx,
    sub,
    { type: 'cancel_at_period_end' },
    { paid_through: paidThrough, next_retry_at: null },
  );
  if (s) await enqueue(trx, SubscriptionCancelled, cancelledMessage(sub, null, 0, periodStart));
  else await subscriptions.record(trx, sub, { paid_through: paidThrough });
}
