import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '@billing/db';
import { payments, recordOrder, subscriptions, type PaymentUseCaseContext } from '../src/index.js';

// What the use cases' real-database tests start from (docs/architecture.md, tests): the monthly
// plan, a context that logs nowhere, and a checkout taken as far as a test needs.

/** The plan the tests buy: 9.00 EUR a month for the role `r`. */
export const MONTHLY = {
  id: 'm',
  name: 'Monthly',
  description: '',
  amount: 900,
  currency: 'EUR',
  period: 'P1M',
  role: 'r',
  active: true,
};

/** A use-case context whose logger keeps what was logged at error level in `errors`. */
export function testContext(dunningRetryMs: number[] = [60_000, 120_000]) {
  const errors: string[] = [];
  const ctx: PaymentUseCaseContext = {
    logger: { info: () => undefined, warn: () => undefined, error: (m) => errors.push(m) },
    dunningRetryMs,
  };
  return { ctx, errors };
}

/**
 * A checkout of MONTHLY: a pending subscription and its first payment of `amount`, taken as far as
 * `status`; `completed` is a capture applied through the use case, leaving the subscription active
 * with the wallet `vault-<subscription>`.
 */
export async function firstPayment(
  db: Kysely<Database>,
  status: 'created' | 'pending' | 'approved' | 'completed',
  amount = 900,
): Promise<{ userId: string; subId: string; paymentId: string }> {
  const userId = `u-${randomUUID().slice(0, 8)}`;
  const subId = randomUUID();
  const paymentId = randomUUID();
  await db.transaction().execute(async (trx) => {
    await subscriptions.create(trx, {
      id: subId,
      user_id: userId,
      plan_id: MONTHLY.id,
      plan_name: MONTHLY.name,
      role: MONTHLY.role,
      amount: MONTHLY.amount,
      currency: MONTHLY.currency,
      period: MONTHLY.period,
      approval_url: `https://paypal.test/approve/${subId}`,
    });
    await payments.create(trx, {
      id: paymentId,
      subscription_id: subId,
      user_id: userId,
      kind: 'initial',
      amount,
      currency: 'EUR',
      period_index: 0,
    });
    const p = (await payments.lock(trx, { id: paymentId }))!;
    if (status === 'created') return;
    await payments.transition(trx, p, { type: 'order_created' }, { provider_order_id: `order-${paymentId}` });
    if (status === 'approved') await payments.transition(trx, p, { type: 'approved' });
    if (status !== 'completed') return;
    const capture = { id: `cap-${paymentId}`, status: 'COMPLETED', amount, currency: 'EUR', customId: paymentId };
    const out = await recordOrder(testContext().ctx, trx, p, {
      orderId: `order-${paymentId}`,
      status: 'COMPLETED',
      customId: paymentId,
      capture,
      vaultId: `vault-${subId}`,
    });
    if (out !== 'activated') throw new Error(`the first payment did not activate: ${out}`);
  });
  return { userId, subId, paymentId };
}
