import { fromPayPalValue } from '@billing/domain';
import type {
  CaptureInfo,
  DisputeSeen,
  OrderState,
  PaymentTokenState,
  SetupTokenState,
  WebhookAction,
} from '../provider.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

function money(v: unknown): { amount: number; currency: string } {
  const m = obj(v);
  const currency = str(m['currency_code']) ?? '';
  const value = str(m['value']) ?? '';
  return { amount: fromPayPalValue(value, currency), currency };
}

export function parseCapture(v: unknown): CaptureInfo {
  const c = obj(v);
  const { amount, currency } = money(c['amount']);
  return {
    id: str(c['id']) ?? '',
    status: str(c['status']) ?? 'UNKNOWN',
    amount,
    currency,
    customId: str(c['custom_id']),
  };
}

/** An Orders v2 order (as `return=representation` gives it) in our terms. */
export function parseOrder(v: unknown): OrderState {
  const o = obj(v);
  const unit = obj((o['purchase_units'] as unknown[] | undefined)?.[0]);
  const captures = obj(unit['payments'])['captures'] as unknown[] | undefined;
  const vault = obj(obj(obj(obj(o['payment_source'])['paypal'])['attributes'])['vault']);
  const capture = captures?.[0] ? parseCapture(captures[0]) : null;
  return {
    orderId: str(o['id']) ?? '',
    status: str(o['status']) ?? 'UNKNOWN',
    customId: str(unit['custom_id']) ?? capture?.customId ?? null,
    capture,
    vaultId: vault['status'] === 'VAULTED' ? str(vault['id']) : null,
  };
}

function captureIdFromLinks(v: unknown): string | null {
  const links = Array.isArray(v) ? v : [];
  for (const l of links) {
    const link = obj(l);
    if (link['rel'] === 'up') {
      const m = /\/captures\/([^/?#]+)/.exec(String(link['href'] ?? ''));
      if (m) return m[1] as string;
    }
  }
  return null;
}

/** A PayPal webhook event body to what it means for us (docs/webhooks.md's table). */
export function parseWebhookEvent(event: unknown): WebhookAction {
  const e = obj(event);
  const type = str(e['event_type']) ?? '';
  const r = obj(e['resource']);
  switch (type) {
    case 'CHECKOUT.ORDER.APPROVED':
      return {
        kind: 'order_approved',
        orderId: str(r['id']) ?? '',
        customId: str(obj((r['purchase_units'] as unknown[] | undefined)?.[0])['custom_id']),
      };
    case 'CHECKOUT.ORDER.VOIDED':
    case 'CHECKOUT.PAYMENT-APPROVAL.REVERSED':
      return {
        kind: 'order_voided',
        orderId: str(r['order_id']) ?? str(r['id']) ?? '',
        customId: str(obj((r['purchase_units'] as unknown[] | undefined)?.[0])['custom_id']),
      };
    case 'PAYMENT.CAPTURE.COMPLETED':
    case 'PAYMENT.CAPTURE.PENDING':
    case 'PAYMENT.CAPTURE.DENIED':
    case 'PAYMENT.CAPTURE.DECLINED': {
      const kind =
        type === 'PAYMENT.CAPTURE.COMPLETED'
          ? 'capture_completed'
          : type === 'PAYMENT.CAPTURE.PENDING'
            ? 'capture_pending'
            : 'capture_declined';
      const orderId = str(obj(obj(r['supplementary_data'])['related_ids'])['order_id']);
      return { kind, orderId, capture: parseCapture(r) };
    }
    case 'PAYMENT.CAPTURE.REVERSED': {
      // PayPal's published sample: resource_type "refund", the refund's own id, no custom_id;
      // the capture is named only by the `up` link.
      const { amount, currency } = money(r['amount']);
      return {
        kind: 'capture_reversed',
        captureId: captureIdFromLinks(r['links']) ?? '',
        refundId: str(r['id']) ?? '',
        amount,
        currency,
      };
    }
    case 'PAYMENT.CAPTURE.REFUNDED': {
      const { amount, currency } = money(r['amount']);
      return {
        kind: 'capture_refunded',
        captureId: captureIdFromLinks(r['links']) ?? '',
        refundId: str(r['id']) ?? '',
        customId: str(r['custom_id']),
        amount,
        currency,
        status: str(r['status']) ?? 'COMPLETED',
      };
    }
    case 'VAULT.PAYMENT-TOKEN.CREATED':
      return {
        kind: 'vault_token_created',
        vaultId: str(r['id']) ?? '',
        orderId: str(obj(r['metadata'])['order_id']),
        customId: str(obj(r['metadata'])['custom_id']),
      };
    case 'VAULT.PAYMENT-TOKEN.DELETED':
      return { kind: 'vault_token_deleted', vaultId: str(r['id']) ?? '' };
    case 'CUSTOMER.DISPUTE.CREATED':
    case 'CUSTOMER.DISPUTE.UPDATED':
    case 'CUSTOMER.DISPUTE.RESOLVED':
      return { kind: 'dispute_changed', dispute: parseDispute(r) };
    default:
      return { kind: 'not_supported', eventType: type };
  }
}

/** A Payment Method Tokens v3 setup token (`POST /v3/vault/setup-tokens`) in our terms. */
export function parseSetupToken(v: unknown): SetupTokenState {
  const t = obj(v);
  const links = Array.isArray(t['links']) ? (t['links'] as unknown[]).map(obj) : [];
  return {
    setupTokenId: str(t['id']) ?? '',
    status: str(t['status']) ?? 'UNKNOWN',
    approvalUrl: str(links.find((l) => l['rel'] === 'approve')?.['href']),
  };
}

/** A payment token (`POST /v3/vault/payment-tokens`): the id charged later as a `vault_id`. */
export function parsePaymentToken(v: unknown): PaymentTokenState {
  const t = obj(v);
  return { paymentTokenId: str(t['id']) ?? '', customerId: str(obj(t['customer'])['id']) };
}

/** A Disputes v1 dispute (the CUSTOMER.DISPUTE.* resource) in our terms (docs/disputes.md). */
export function parseDispute(v: unknown): DisputeSeen {
  const d = obj(v);
  const txs = Array.isArray(d['disputed_transactions']) ? (d['disputed_transactions'] as unknown[]) : [];
  const { amount, currency } = money(d['dispute_amount']);
  return {
    disputeId: str(d['dispute_id']) ?? '',
    captureIds: txs.map((t) => str(obj(t)['seller_transaction_id'])).filter((id): id is string => id !== null),
    amount,
    currency,
    reason: str(d['reason']),
    status: str(d['status']) ?? 'OTHER',
    stage: str(d['dispute_life_cycle_stage']),
    outcome: str(obj(d['dispute_outcome'])['outcome_code']),
    updatedAt: str(d['update_time']) ?? str(d['create_time']),
  };
}
