import { randomUUID } from 'node:crypto';
import type {
  ChargeVaultedInput,
  DisputeActionInput,
  OrderState,
  PaymentProvider,
  RefundInput,
  WebhookAction,
} from '@billing/payments';

// The payment-worker's in-process tests share this fake PayPal.
export type Answer<T> = T | Error;
/** A PaymentProvider whose answers a test scripts and whose calls it counts. */
export class FakeProvider implements PaymentProvider {
  readonly name = 'fake';
  calls: { op: string; input: unknown }[] = [];
  captureAnswer: (orderId: string) => Answer<OrderState> = () => new Error('no capture scripted');
  orderAnswer: (orderId: string) => Answer<OrderState> = () => new Error('no order scripted');
  /** By default PayPal charges the vaulted wallet at once and answers COMPLETED with the capture. */
  chargeAnswer: (input: ChargeVaultedInput) => Answer<OrderState> = (i) => ({
    orderId: `ORD-${randomUUID()}`,
    status: 'COMPLETED',
    customId: i.paymentId,
    vaultId: null,
    capture: {
      id: `CAP-${randomUUID()}`,
      status: 'COMPLETED',
      amount: i.amount,
      currency: i.currency,
      customId: i.paymentId,
    },
  });
  refundAnswer: (input: RefundInput) => Answer<{ id: string; status: string; amount: number; currency: string }> = (
    i,
  ) => ({
    id: `REF-${i.refundId}`,
    status: 'COMPLETED',
    amount: i.amount,
    currency: i.currency,
  });
  private answer<T>(op: string, input: unknown, a: Answer<T>): T {
    this.calls.push({ op, input });
    if (a instanceof Error) throw a;
    return a;
  }
  async createCheckout(): Promise<never> {
    throw new Error('not used by the payment-worker');
  }
  async capture(i: { orderId: string; idempotencyKey: string }) {
    return this.answer('capture', i, this.captureAnswer(i.orderId));
  }
  async getOrder(orderId: string) {
    return this.answer('getOrder', orderId, this.orderAnswer(orderId));
  }
  async chargeVaulted(i: ChargeVaultedInput) {
    return this.answer('chargeVaulted', i, this.chargeAnswer(i));
  }
  async refund(i: RefundInput) {
    return this.answer('refund', i, this.refundAnswer(i));
  }
  async createSetupToken(): Promise<never> {
    throw new Error('the payment-worker does not start setup tokens');
  }
  getSetupToken: (id: string) => Promise<{ setupTokenId: string; status: string; approvalUrl: string | null }> =
    async () => {
      throw new Error('no setup token scripted');
    };
  createPaymentToken: (i: { setupTokenId: string; idempotencyKey: string }) => Promise<{
    paymentTokenId: string;
    customerId: string | null;
  }> = async () => {
    throw new Error('no payment token scripted');
  };
  async verifyWebhook(): Promise<boolean> {
    return true;
  }
  /** The stored payload is already the parsed action (PayPal's shapes are tested against its published samples elsewhere). */
  parseWebhook(event: unknown): WebhookAction {
    return event as WebhookAction;
  }
  /** PayPal's answer to a dispute action: nothing (2xx) by default, or an error. */
  disputeAnswer: (input: DisputeActionInput) => Answer<void> = () => undefined;
  async acceptDisputeClaim(i: DisputeActionInput) {
    return this.answer('acceptDisputeClaim', i, this.disputeAnswer(i));
  }
  async provideDisputeEvidence(i: DisputeActionInput) {
    return this.answer('provideDisputeEvidence', i, this.disputeAnswer(i));
  }
  /** How often an operation was called. */
  count(op: string) {
    return this.calls.filter((c) => c.op === op).length;
  }
}

/** The inputs of every call of one operation, in order. */
export const inputsOf = <T>(provider: FakeProvider, op: string): T[] =>
  provider.calls.filter((c) => c.op === op).map((c) => c.input as T);
