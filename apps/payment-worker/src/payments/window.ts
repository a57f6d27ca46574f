import { ReceiptBatch, lockNamedPayments, namedPayments, type NamedPayments } from '@billing/billing-core';
import type { Tx } from './context.js';

/**
 * What the messages applied in one transaction share (docs/messages.md, windows): their
 * receipts, numbered together when the transaction ends, and the work they do together.
 */
export interface PaymentWindow {
  receipts: ReceiptBatch;
  /** What the window's messages read first, at its end (the stored webhooks, locked), naming their payments. */
  prepare: ((trx: Tx) => Promise<void>)[];
  /** The payments the window's messages name: locked up front, in id order, with their subscriptions. */
  named: NamedPayments;
  /** What the window's messages left to do together, run in order at its end (renewals decided at once, say). */
  beforeClose: ((trx: Tx) => Promise<void>)[];
}

export const paymentWindow = {
  open: (): PaymentWindow => ({ receipts: new ReceiptBatch(), prepare: [], named: namedPayments(), beforeClose: [] }),
  /** A group of PayPal's answers (TransactionGroup): the payments they record locked up front, in id order. */
  ready: async (trx: Tx, w: PaymentWindow): Promise<void> => {
    await lockNamedPayments(trx, w.named);
    w.named = namedPayments();
  },
  close: async (trx: Tx, w: PaymentWindow): Promise<void> => {
    for (const f of w.prepare) await f(trx);
    // Windows run side by side: every payment any of them names is locked here, in id order,
    // before any is applied (docs/messages.md, windows side by side).
    await lockNamedPayments(trx, w.named);
    for (const f of w.beforeClose) await f(trx);
    if (w.receipts.size) await w.receipts.issue(trx);
  },
};
