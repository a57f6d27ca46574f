import { randomBytes } from 'node:crypto';
import type { Dispute } from './disputes.js';

export const newId = (prefix = '', n = 17) =>
  prefix +
  randomBytes(n)
    .toString('base64')
    .replace(/[^A-Z0-9]/gi, '')
    .toUpperCase()
    .slice(0, n);

export interface Money {
  currency_code: string;
  value: string;
}

export interface Capture {
  id: string;
  status: 'COMPLETED' | 'PENDING' | 'DECLINED' | 'REFUNDED' | 'PARTIALLY_REFUNDED';
  amount: Money;
  custom_id?: string;
  final_capture: boolean;
  seller_protection: { status: string };
  create_time: string;
  update_time: string;
  supplementary_data: { related_ids: { order_id: string } };
  links: { href: string; rel: string; method: string }[];
  refunded: number;
}

export interface Refund {
  id: string;
  status: 'COMPLETED';
  amount: Money;
  custom_id?: string;
  create_time: string;
  update_time: string;
  links: { href: string; rel: string; method: string }[];
}

export interface Order {
  id: string;
  intent: string;
  status: 'CREATED' | 'PAYER_ACTION_REQUIRED' | 'APPROVED' | 'VOIDED' | 'COMPLETED';
  purchase_units: {
    reference_id?: string;
    custom_id?: string;
    description?: string;
    amount: Money;
    payments?: { captures: Capture[] };
  }[];
  payment_source: { paypal: Record<string, unknown> };
  return_url?: string;
  cancel_url?: string;
  store_in_vault: boolean;
  vault_id?: string;
  create_time: string;
  update_time: string;
}

export interface Behaviour {
  /** The next N captures (and vaulted charges) answer 422 INSTRUMENT_DECLINED. */
  declineCaptures: number;
  /** Per vault id: the next N charges on that saved wallet are declined. */
  declineVaults: Record<string, number>;
  /**
   * Per vault id: the issue those declines answer with (INSTRUMENT_DECLINED when not set), one of
   * PayPal's documented declines (DECLINE_DESCRIPTIONS in server.ts).
   */
  declineIssues: Record<string, string>;
  /** Captures come back PENDING instead of COMPLETED. */
  capturePending: boolean;
  /** Minor units added to what a capture reports (a mismatching capture). */
  captureAmountDelta: number;
  /** Calls whose "METHOD path" contains `match` answer `status` (count times). */
  failures: { match: string; status: number; count: number; retryAfterS?: number }[];
  /** Calls whose "METHOD path" contains `match` wait `ms` first. */
  delays: { match: string; ms: number }[];
  /** deliver, drop, duplicate (5 copies at once), or hold until released. */
  webhookMode: 'deliver' | 'drop' | 'duplicate' | 'hold';
  /** auto checks the signature; FAILURE always fails; error answers 503. */
  verification: 'auto' | 'FAILURE' | 'error';
}

export const defaultBehaviour = (): Behaviour => ({
  declineCaptures: 0,
  declineVaults: {},
  declineIssues: {},
  capturePending: false,
  captureAmountDelta: 0,
  failures: [],
  delays: [],
  webhookMode: 'deliver',
  verification: 'auto',
});

export interface Call {
  at: string;
  method: string;
  path: string;
  requestId: string | null;
  prefer: string | null;
  body: unknown;
  status: number;
}

/** Payment Method Tokens v3: a setup token the buyer approves, then exchanged for a payment token. */
export interface SetupToken {
  id: string;
  customerId: string;
  status: 'PAYER_ACTION_REQUIRED' | 'APPROVED' | 'VAULTED';
  returnUrl: string;
  cancelUrl: string;
  usageType: string;
  description: string | null;
  paymentTokenId?: string;
}

export class SandboxState {
  setupTokens = new Map<string, SetupToken>();
  orders = new Map<string, Order>();
  captures = new Map<string, { capture: Capture; orderId: string }>();
  refunds = new Map<string, Refund>();
  disputes = new Map<string, Dispute>();
  vault = new Map<string, { customerId: string; deleted: boolean; orderId: string; customId?: string }>();
  tokens = new Set<string>();
  /** Ids that identify a buyer or their wallet beyond what the stores above hold: PayerIDs, account ids. */
  payerIds = new Set<string>();
  idempotent = new Map<string, { status: number; body: unknown }>();
  calls: Call[] = [];
  /** Calls held by a delay now, per `METHOD path` (several calls may share one). */
  held = new Map<string, number>();
  behaviour: Behaviour = defaultBehaviour();
  reset(): void {
    this.orders.clear();
    this.captures.clear();
    this.refunds.clear();
    this.disputes.clear();
    this.vault.clear();
    this.setupTokens.clear();
    this.idempotent.clear();
    this.calls = [];
    this.behaviour = defaultBehaviour();
  }
}
