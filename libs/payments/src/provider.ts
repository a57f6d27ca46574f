/** What the system needs from a payment provider; PayPal is one implementation. */
export interface PaymentProvider {
  readonly name: string;
  /** Creates a checkout the buyer approves at the provider; returns where to send the buyer. */
  createCheckout(input: CreateCheckoutInput): Promise<CheckoutCreated>;
  /** Captures an approved checkout. An already captured one answers as it stands. */
  capture(input: { orderId: string; idempotencyKey: string }): Promise<OrderState>;
  /** Charges a saved payment method with no buyer present (renewals). */
  chargeVaulted(input: ChargeVaultedInput): Promise<OrderState>;
  refund(input: RefundInput): Promise<RefundState>;
  getOrder(orderId: string): Promise<OrderState>;
  /**
   * Starts saving the buyer's wallet without a purchase (PayPal's vault setup token, docs/api.md, …/payment-method):
   * where to send the buyer to approve it.
   */
  createSetupToken(input: SetupTokenInput): Promise<SetupTokenState>;
  /** A setup token as PayPal shows it (reconciliation: did the buyer approve without coming back?). */
  getSetupToken(setupTokenId: string): Promise<SetupTokenState>;
  /** Exchanges an approved setup token for a payment token (the id renewals charge). */
  createPaymentToken(input: { setupTokenId: string; idempotencyKey: string }): Promise<PaymentTokenState>;
  /** Asks the provider whether a webhook is genuine; throws ProviderUnavailableError when it cannot tell. */
  verifyWebhook(input: { headers: Record<string, string | undefined>; rawBody: string }): Promise<boolean>;
  /** Turns a verified webhook body into what it means for us. */
  parseWebhook(event: unknown): WebhookAction;
  /** Accepts a dispute's claim: PayPal refunds the buyer and resolves it (docs/disputes.md). */
  acceptDisputeClaim(input: DisputeActionInput): Promise<void>;
  /** Sends evidence, as text, for a dispute (docs/disputes.md). */
  provideDisputeEvidence(input: DisputeActionInput): Promise<void>;
}

export interface DisputeActionInput {
  /** PayPal's dispute id. */
  disputeId: string;
  note: string;
  idempotencyKey: string;
}

/** A dispute as PayPal's CUSTOMER.DISPUTE.* webhooks show it (docs/disputes.md). */
export interface DisputeSeen {
  disputeId: string;
  /** The captures it names (`seller_transaction_id`). */
  captureIds: string[];
  amount: number;
  currency: string;
  reason: string | null;
  status: string;
  stage: string | null;
  outcome: string | null;
  updatedAt: string | null;
}

export interface CreateCheckoutInput {
  /** Our payment id: the provider echoes it back (PayPal's `custom_id`). */
  paymentId: string;
  amount: number;
  currency: string;
  description: string;
  returnUrl: string;
  cancelUrl: string;
  idempotencyKey: string;
}

export interface SetupTokenInput {
  returnUrl: string;
  cancelUrl: string;
  /** What the buyer agrees to, shown on the approval page. */
  description: string;
  idempotencyKey: string;
}

export interface SetupTokenState {
  setupTokenId: string;
  /** PAYER_ACTION_REQUIRED, APPROVED, VAULTED, … */
  status: string;
  /** The `approve` link, while the buyer has still to act. */
  approvalUrl: string | null;
}

export interface PaymentTokenState {
  paymentTokenId: string;
  customerId: string | null;
}

export interface CheckoutCreated {
  orderId: string;
  approvalUrl: string;
  status: string;
}

export interface ChargeVaultedInput {
  paymentId: string;
  amount: number;
  currency: string;
  description: string;
  vaultId: string;
  idempotencyKey: string;
}

export interface RefundInput {
  captureId: string;
  amount: number;
  currency: string;
  /** Our refund id: the provider echoes it back (PayPal's `custom_id`). */
  refundId: string;
  idempotencyKey: string;
}

export interface CaptureInfo {
  id: string;
  /** COMPLETED, PENDING, DECLINED, REFUNDED, PARTIALLY_REFUNDED, FAILED */
  status: string;
  amount: number;
  currency: string;
  customId: string | null;
}

export interface OrderState {
  orderId: string;
  /** CREATED, SAVED, APPROVED, VOIDED, COMPLETED, PAYER_ACTION_REQUIRED */
  status: string;
  customId: string | null;
  capture: CaptureInfo | null;
  vaultId: string | null;
}

export interface RefundState {
  id: string;
  /** COMPLETED, PENDING, CANCELLED, FAILED */
  status: string;
  amount: number;
  currency: string;
}

/** What a webhook means, independent of the provider's vocabulary. */
export type WebhookAction =
  | { kind: 'order_approved'; orderId: string; customId: string | null }
  | { kind: 'order_voided'; orderId: string; customId: string | null }
  | { kind: 'capture_completed' | 'capture_pending' | 'capture_declined'; orderId: string | null; capture: CaptureInfo }
  /** A chargeback: PayPal's resource is a refund naming the capture only by its `up` link. */
  | { kind: 'capture_reversed'; captureId: string; refundId: string; amount: number; currency: string }
  | {
      kind: 'capture_refunded';
      captureId: string;
      refundId: string;
      customId: string | null;
      amount: number;
      currency: string;
      status: string;
    }
  | { kind: 'vault_token_created'; vaultId: string; orderId: string | null; customId: string | null }
  | { kind: 'vault_token_deleted'; vaultId: string }
  | { kind: 'dispute_changed'; dispute: DisputeSeen }
  | { kind: 'not_supported'; eventType: string };

/** The provider answered 4xx: the operation is refused, retrying the same call will not help. */
export class ProviderRefusedError extends Error {
  override readonly name = 'ProviderRefusedError';
  constructor(
    readonly status: number,
    readonly issue: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** Unreachable, timed out or 5xx after our retries: the outcome is unknown. */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
}
