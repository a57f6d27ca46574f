import { ReceiptBatch } from '@billing/billing-core';
import type { Tx } from './outcomes.js';

/**
 * What the messages applied in one transaction share (docs/messages.md, windows): their
 * receipts, numbered together when the transaction ends.
 */
export interface PaymentWindow {
  receipts: ReceiptBatch;
}

export const paymentWindow = {
  open: (): PaymentWindow => ({ receipts: new ReceiptBatch() }),
  close: async (trx: Tx, w: PaymentWindow): Promise<void> => {
    if (w.receipts.size) await w.receipts.issue(trx);
  },
};
