import type { Transaction } from 'kysely';
import { SubscriptionCancelled } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { HOLDING_MONEY, proratedRefund } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { endSubscriptionGrant } from './grants.js';
import { payments } from './payments.js';
import { subscriptions } from './subscriptions.js';
import { refundableLeft, requestRefund } from './refunds.js';
import { currentPeriod } from './periods.js';

export type CancelMode = 'at_period_end' | 'immediately';

export interface CancelResult {
  subscription: SubscriptionRow;
  changed: boolean;
  refundAmount: number;
}

/**
 * docs/api.md's cancel, for users and operators alike, in the caller's transaction with the
 * subscription locked. `immediately` ends the grant now and refunds every completed payment
 * whose period has not ended, pro rata at `now` (refunds go to PayPal after the commit).
 */
export async function cancelSubscription(
  trx: Transaction<Database>,
  sub: SubscriptionRow,
  mode: CancelMode,
  now: Date,
  actor: { by: string; reason: string; buyerReason?: string | undefined },
): Promise<CancelResult> {
  const wasPending = sub.status === 'pending';
  // A paused subscription is refunded as of its pause: the time left then is what it still holds (docs/api.md, pause).
  const asOf = sub.status === 'paused' && sub.paused_at ? sub.paused_at : now;
  const t = await subscriptions.transition(
    trx,
    sub,
    { type: mode === 'immediately' ? 'cancel_immediately' : 'cancel_at_period_end' },
    (to) => ({
      ...(to.status === 'cancelled' ? { cancelled_at: now, approval_url: null } : {}),
      next_retry_at: null,
      ...(actor.buyerReason ? { cancel_reason: actor.buyerReason } : {}),
    }),
  );
  if (!t) return { subscription: sub, changed: false, refundAmount: 0 };
  if (t.status === 'cancelled') await payments.endOpen(trx, sub.id, { type: 'subscription_ended' });
  let refundAmount = 0;
  if (t.effects.includes('refund_unused')) {
    const paid = await trx
      .selectFrom('payments')
      .selectAll()
      .where('subscription_id', '=', sub.id)
      .where('status', 'in', [...HOLDING_MONEY])
      .where('period_end', '>', asOf)
      .forUpdate()
      .execute();
    for (const p of paid) {
      const left = await refundableLeft(trx, p);
      const amount = proratedRefund({
        amount: p.amount,
        left,
        periodStart: p.period_start!,
        periodEnd: p.period_end!,
        cancelledAt: asOf,
      });
      if (amount <= 0) continue;
      await requestRefund(
        trx,
        p,
        amount,
        actor.by.startsWith('user:') ? 'user_cancel' : 'operator',
        actor.reason,
        actor.by,
      );
      refundAmount += amount;
    }
  }
  if (t.effects.includes('grant_ends'))
    await endSubscriptionGrant(trx, sub, `cancelled ${mode === 'immediately' ? 'immediately' : 'at period end'}`);
  if (!wasPending) {
    const period = currentPeriod(sub, now);
    await enqueue(
      trx,
      SubscriptionCancelled,
      cancelledMessage(
        sub,
        mode === 'immediately' ? now : null,
        refundAmount,
        mode === 'immediately' ? now : (period?.end ?? null),
      ),
    );
  }
  return { subscription: sub, changed: true, refundAmount };
}

/**
 * `subscription.cancelled`'s data (docs/messages.md): `at` null, set to end at `endsAt` (its period
 * end); otherwise cancelled at once at `at`.
 */
export function cancelledMessage(
  sub: Pick<SubscriptionRow, 'id' | 'user_id' | 'plan_id' | 'plan_name' | 'currency'>,
  at: Date | null,
  refundAmount: number,
  endsAt: Date | null = at,
) {
  return {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    mode: at ? ('immediately' as const) : ('at_period_end' as const),
    cancelledAt: at?.toISOString() ?? null,
    endsAt: endsAt?.toISOString() ?? null,
    refundAmount,
    currency: sub.currency,
  };
}

/**
 * docs/api.md's resume (the subscription locked by the caller): a cancel at the period end undone,
 * while the period has not ended and a wallet is saved; the domain's `NotResumableError` otherwise.
 * Whether it moved (an active subscription not set to end: nothing to undo).
 */
export async function resumeSubscription(
  trx: Transaction<Database>,
  sub: SubscriptionRow,
  now: Date,
): Promise<boolean> {
  const period = currentPeriod(sub, now);
  const t = await subscriptions.transition(trx, sub, {
    type: 'resume',
    periodEnded: !period || now >= period.end,
    hasPaymentMethod: Boolean(sub.vault_id),
  });
  return t !== null;
}
