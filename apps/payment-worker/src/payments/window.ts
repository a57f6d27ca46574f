import { ReceiptBatch } from '@billing/billing-core';
import type { Tx } from './context.js';

/**
 * What the messages applied in one transaction share (docs/messages.md, windows): their
 * receipts, numbered together when the transaction ends, and the work they do together.
 */
export interface PaymentWindow {
  receipts: ReceiptBatch;
  /** What the window's messages left to do together, run in order at its end (renewals decided at once, say). */
  beforeClose: ((trx: Tx) => Promise<void>)[];
}

export const paymentWindow = {
  open: (): PaymentWindow => ({ receipts: new ReceiptBatch(), beforeClose: [] }),
  close: async (trx: Tx, w: PaymentWindow): Promise<void> => {
    for (const f of w.beforeClose) await f(trx);
    if (w.receipts.size) await w.receipts.issue(trx);
  },
};
