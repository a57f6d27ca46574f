import t from 'tap';
import { applyPaymentEvent, PAYMENT_STATUSES, type PaymentEvent, type PaymentStatus } from '../src/payment-state.js';

type Row = [PaymentStatus, PaymentEvent, PaymentStatus | null, string[]?, string?];
const ev = <T extends PaymentEvent['type']>(type: T) => ({ type }) as PaymentEvent;

// Every transition that changes something; every other (status, event) pair must be a no-op.
const changes: Row[] = [
  ['created', ev('order_created'), 'pending'],
  ['created', ev('approved'), 'approved', ['capture']],
  ['pending', ev('approved'), 'approved', ['capture']],
  ['created', ev('capture_pending'), 'approved'],
  ['pending', ev('capture_pending'), 'approved'],
  ...(['created', 'pending', 'approved'] as const).flatMap((s): Row[] => [
    [s, ev('capture_completed'), 'completed', ['activate']],
    [s, ev('capture_mismatch'), 'failed', ['refund_in_full'], 'capture_mismatch'],
    [s, ev('capture_declined'), 'failed', [], 'declined'],
    [s, { type: 'provider_failed', reason: 'provider_error' }, 'failed', [], 'provider_error'],
    [s, ev('voided'), 'cancelled', []],
    [s, ev('duplicate_capture'), 'cancelled', ['refund_in_full'], 'replaced'],
  ]),
  ['failed', ev('capture_completed'), 'failed', ['refund_in_full']],
  ['cancelled', ev('capture_completed'), 'cancelled', ['refund_in_full']],
  ...(['created', 'pending'] as const).flatMap((s): Row[] => [
    [s, ev('buyer_cancelled'), 'cancelled', []],
    [s, ev('checkout_expired'), 'cancelled', [], 'checkout_expired'],
    [s, ev('superseded'), 'cancelled', [], 'replaced'],
    [s, ev('subscription_ended'), 'cancelled', []],
  ]),
  ...(['completed', 'partially_refunded', 'refunded'] as const).map((s): Row => [s, ev('reversed'), 'reversed']),
  ['completed', { type: 'refund_recorded', amount: 1000, refundedAmount: 400 }, 'partially_refunded'],
  ['completed', { type: 'refund_recorded', amount: 1000, refundedAmount: 1000 }, 'refunded'],
  ['partially_refunded', { type: 'refund_recorded', amount: 1000, refundedAmount: 1000 }, 'refunded'],
  // A free period (docs/api.md, coupons at checkout): paid without a charge, only before anything went to PayPal.
  ['created', ev('nothing_due'), 'completed', ['activate']],
];

t.test('every transition that changes the payment', async (t) => {
  for (const [from, event, to, effects = [], reason] of changes) {
    const r = applyPaymentEvent(from, event);
    t.ok(r, `${from} + ${event.type}`);
    t.equal(r?.status, to, `${from} + ${event.type} → ${to}`);
    t.same(r?.effects, effects, `${from} + ${event.type} effects`);
    if (reason) t.equal(r?.failureReason, reason);
  }
});

t.test('every other pair is a no-op (stale or repeated event)', async (t) => {
  const allEvents: PaymentEvent[] = [
    ev('order_created'),
    ev('approved'),
    ev('capture_completed'),
    ev('capture_pending'),
    ev('capture_declined'),
    ev('capture_mismatch'),
    { type: 'provider_failed', reason: 'provider_error' },
    ev('voided'),
    ev('buyer_cancelled'),
    ev('checkout_expired'),
    ev('superseded'),
    ev('reversed'),
    ev('duplicate_capture'),
    ev('subscription_ended'),
    ev('nothing_due'),
  ];
  let noops = 0;
  for (const s of PAYMENT_STATUSES) {
    for (const e of allEvents) {
      if (changes.some(([f, ce]) => f === s && ce.type === e.type)) continue;
      t.equal(applyPaymentEvent(s, e), null, `${s} + ${e.type} is a no-op`);
      noops++;
    }
  }
  t.ok(noops > 50);
});

t.test('a refund that changes nothing, or on an unpaid payment, is a no-op', async (t) => {
  t.equal(
    applyPaymentEvent('partially_refunded', { type: 'refund_recorded', amount: 1000, refundedAmount: 500 }),
    null,
  );
  t.equal(applyPaymentEvent('refunded', { type: 'refund_recorded', amount: 1000, refundedAmount: 1000 }), null);
  t.equal(applyPaymentEvent('pending', { type: 'refund_recorded', amount: 1000, refundedAmount: 1000 }), null);
  t.equal(applyPaymentEvent('reversed', { type: 'refund_recorded', amount: 1000, refundedAmount: 1000 }), null);
});

t.test('a zero refund total leaves a paid payment as it is', async (t) => {
  t.equal(applyPaymentEvent('completed', { type: 'refund_recorded', amount: 1000, refundedAmount: 0 }), null);
});
