import type { Transaction } from 'kysely';
import { SubscriptionCancelled } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { cancelledMessage } from '@billing/billing-core';
import { enqueue } from '@billing/messaging';

/** `at` null: set to end at `endsAt` (the period end); otherwise cancelled at once at `at`. */
export async function notifyCancelled(
  trx: Transaction<Database>,
  sub: SubscriptionRow,
  at: Date | null,
  refundAmount: number,
  endsAt: Date | null = at,
): Promise<void> {
  await enqueue(trx, SubscriptionCancelled, cancelledMessage(sub, at, refundAmount, endsAt));
}
