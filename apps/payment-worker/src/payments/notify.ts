import type { Transaction } from 'kysely';
import { SubscriptionActivated, SubscriptionCancelled } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { activatedMessage } from '@billing/billing-core';
import { enqueue } from '@billing/messaging';

export async function notifyActivated(
  trx: Transaction<Database>,
  sub: SubscriptionRow,
  start: Date,
  end: Date,
): Promise<void> {
  await enqueue(trx, SubscriptionActivated, activatedMessage(sub, start, end));
}

/** `at` null: set to end at `endsAt` (the period end); otherwise cancelled at once at `at`. */
export async function notifyCancelled(
  trx: Transaction<Database>,
  sub: SubscriptionRow,
  at: Date | null,
  refundAmount: number,
  endsAt: Date | null = at,
): Promise<void> {
  await enqueue(trx, SubscriptionCancelled, {
    userId: sub.user_id,
    subscriptionId: sub.id,
    planId: sub.plan_id,
    planName: sub.plan_name,
    mode: at ? 'immediately' : 'at_period_end',
    cancelledAt: at?.toISOString() ?? null,
    endsAt: endsAt?.toISOString() ?? null,
    refundAmount,
    currency: sub.currency,
  });
}
