import type { Kysely, Transaction } from 'kysely';
import type { ChargeOutcome, PaymentUseCaseContext } from '@billing/billing-core';
import type { Database, TransactionGroup } from '@billing/db';
import type { OrderState, PaymentProvider, ProviderRefusedError } from '@billing/payments';
import type { Logger, Metrics } from '@billing/service-kit';
import type { PaymentWindow } from './window.js';

export type Tx = Transaction<Database>;

/**
 * What every payment handler works with: billing-core's use cases apply PayPal's answers
 * (docs/architecture.md, use cases); the handlers call PayPal and record through these.
 */
export interface PaymentContext extends PaymentUseCaseContext {
  provider: PaymentProvider;
  logger: Logger;
  /** `renewal_charges_total` (absent in tests that do not read it). */
  metrics?: Pick<Metrics, 'renewalCharges'>;
  /**
   * Group commit for the transactions that record PayPal's answers (captures, renewal charges):
   * those of one turn of the event loop share one transaction and its receipts. Without it, each
   * records on its own.
   */
  records?: TransactionGroup<PaymentWindow>;
  /**
   * Renewal charges' answers recorded together, set-based in the common case (docs/messages.md,
   * windows); without it, each is recorded through `records` or on its own.
   */
  charges?: { record(paymentId: string, answer: OrderState | ProviderRefusedError): Promise<ChargeOutcome> };
}

/**
 * Runs `record` (which records about `paymentId`) in the context's group if it has one (group
 * commit: docs/messages.md, windows), with the group's receipts, else in a transaction of its own.
 */
export function recordAnswer<T>(
  ctx: PaymentContext,
  db: Kysely<Database>,
  paymentId: string,
  record: (trx: Tx, ctx: PaymentContext) => Promise<T>,
): Promise<T> {
  // In a group, the payment is locked up front with the group's others, in id order (docs/messages.md, windows side by side).
  if (ctx.records)
    return ctx.records.run(
      (trx, w) => record(trx, { ...ctx, receipts: w.receipts }),
      (w) => w.named.ids.add(paymentId),
    );
  return db.transaction().execute((trx) => record(trx, ctx));
}
