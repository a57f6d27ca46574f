import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import t from 'tap';
import {
  DisputeActionRequested,
  PaymentCheckRequested,
  ProviderEventReceived,
  RefundRequested,
  RenewalChargeRequested,
} from '@billing/contracts';
import { issueReceipt, onPaymentEvent, payments, requestDisputeAction, subscriptions } from '@billing/billing-core';
import { importCatalog, TransactionGroup } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { afterClosed, makeEnvelope, type StepContext } from '@billing/messaging';
import {
  ProviderRefusedError,
  type CaptureInfo,
  type OrderState,
  type PaymentProvider,
  type WebhookAction,
} from '@billing/payments';
import { createLogger } from '@billing/service-kit';
import { FakeProvider } from './fake-provider.js';
import { applyProviderEvent } from '../src/handlers/apply-provider-event.js';
import { chargeRenewalHandler } from '../src/handlers/charge-renewal.js';
import { checkOrderHandler } from '../src/handlers/check-order.js';
import { sendDisputeActionHandler } from '../src/handlers/send-dispute-action.js';
import { sendRefundHandler } from '../src/handlers/send-refund.js';
import type { PaymentContext } from '../src/payments/context.js';

// The middle layer: each payment-worker handler in-process, against a real migrated database,
// with a fake PaymentProvider whose answers a test scripts and whose calls it counts. What the
// outside world would see is read from the tables and the outbox (messages to publish).
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  {
    id: 'monthly',
    name: 'Monthly',
    description: '',
    amount: 1000,
    currency: 'USD',
    period: 'P1M',
    role: 'pro',
    active: true,
  },
]);
const logger = createLogger({ service: 'test', level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

const ctxOf = (provider: PaymentProvider): PaymentContext => ({ provider, logger, dunningRetryMs: [60_000, 120_000] });
function step<D>(data: D, contract: Parameters<typeof makeEnvelope>[0]): StepContext<D> {
  return {
    db,
    envelope: makeEnvelope(contract, data as never) as never,
    attempt: 1,
    logger,
    commit: async () => true,
  };
}

async function webhook(provider: FakeProvider, action: WebhookAction): Promise<string | null> {
  const id = await stored(action);
  await applyProviderEvent(ctxOf(provider))(
    step({ providerEventRowId: id, provider: 'paypal', eventType: action.kind }, ProviderEventReceived),
  );
  return (await db.selectFrom('provider_events').select('outcome').where('id', '=', id).executeTakeFirstOrThrow())
    .outcome;
}
const checkOrder = (provider: FakeProvider, orderId: string, expireUnapproved = false) =>
  checkOrderHandler(ctxOf(provider))(
    step({ orderId, source: 'reconciliation', expireUnapproved }, PaymentCheckRequested),
  );
const chargeRenewal = (provider: FakeProvider, paymentId: string) =>
  chargeRenewalHandler(ctxOf(provider))(step({ paymentId }, RenewalChargeRequested));
const sendRefund = (provider: FakeProvider, refundId: string) =>
  sendRefundHandler(ctxOf(provider))(step({ refundId }, RefundRequested));

/** A checkout as billing-api leaves it: a pending subscription and its payment pending at PayPal. */
async function checkout(userId = `u-${randomUUID()}`) {
  const subscriptionId = randomUUID();
  const paymentId = randomUUID();
  const orderId = `ORD-${paymentId}`;
  await db.transaction().execute(async (trx) => {
    await subscriptions.create(trx, {
      id: subscriptionId,
      user_id: userId,
      plan_id: 'monthly',
      plan_name: 'Monthly',
      role: 'pro',
      amount: 1000,
      currency: 'USD',
      period: 'P1M',
    });
    await payments.create(trx, {
      id: paymentId,
      subscription_id: subscriptionId,
      user_id: userId,
      kind: 'initial',
      amount: 1000,
      currency: 'USD',
      period_index: 0,
    });
    const p = (await payments.lock(trx, { id: paymentId }))!;
    await payments.transition(trx, p, { type: 'order_created' }, { provider_order_id: orderId });
  });
  return { userId, subscriptionId, paymentId, orderId };
}
const captured = (paymentId: string, over: Partial<CaptureInfo> = {}): CaptureInfo => ({
  id: `CAP-${paymentId}`,
  status: 'COMPLETED',
  amount: 1000,
  currency: 'USD',
  customId: paymentId,
  ...over,
});
const orderWith = (
  orderId: string,
  capture: CaptureInfo | null,
  status = 'COMPLETED',
  vaultId: string | null = null,
): OrderState => ({
  orderId,
  status,
  customId: capture?.customId ?? null,
  vaultId,
  capture,
});
const sub = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const pay = (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const refundsOf = (paymentId: string) =>
  db.selectFrom('refunds').selectAll().where('payment_id', '=', paymentId).orderBy('created_at').execute();
const grantsOf = (userId: string) => db.selectFrom('role_grants').selectAll().where('user_id', '=', userId).execute();
/** Messages waiting in the outbox for a subscription or user, by type. */
async function sent(type: string, match: (data: Record<string, unknown>) => boolean) {
  const rows = await db.selectFrom('outbox').select('envelope').where('type', '=', type).execute();
  return rows.map((r) => (r.envelope as { data: Record<string, unknown> }).data).filter(match);
}

t.test(
  'approval → capture → active: the role granted, the buyer told, the vault id kept; a redelivery does nothing',
  async (t) => {
    const provider = new FakeProvider();
    const c = await checkout();
    provider.captureAnswer = (orderId) => orderWith(orderId, captured(c.paymentId), 'COMPLETED', 'VAULT-A');
    t.equal(
      await webhook(provider, { kind: 'order_approved', orderId: c.orderId, customId: c.paymentId }),
      'approved; capture needed',
    );
    t.equal(provider.count('capture'), 1, 'captured once the approval committed');
    t.match(await pay(c.paymentId), { status: 'completed', provider_capture_id: `CAP-${c.paymentId}` });
    t.ok((await pay(c.paymentId)).period_start, 'the period it pays is recorded');
    t.match(await sub(c.subscriptionId), { status: 'active', vault_id: 'VAULT-A', approval_url: null });
    t.same(
      (await grantsOf(c.userId)).map((g) => [g.role, g.ended_at]),
      [['pro', null]],
    );
    t.equal((await sent('role.change.requested', (d) => d['userId'] === c.userId)).length, 1);
    t.equal((await sent('subscription.activated', (d) => d['subscriptionId'] === c.subscriptionId)).length, 1);
    // PayPal's capture webhook arrives after the capture answer: nothing more happens.
    t.equal(
      await webhook(provider, { kind: 'capture_completed', orderId: c.orderId, capture: captured(c.paymentId) }),
      'no-op',
    );
    t.equal(await webhook(provider, { kind: 'order_approved', orderId: c.orderId, customId: c.paymentId }), 'no-op');
    t.equal(provider.count('capture'), 1, 'never captured twice');
    t.equal((await sent('subscription.activated', (d) => d['subscriptionId'] === c.subscriptionId)).length, 1);
  },
);

t.test(
  'an event already processed is skipped, but an approval whose capture never ran is captured on redelivery',
  async (t) => {
    const provider = new FakeProvider();
    const c = await checkout();
    provider.captureAnswer = () => new Error('connection reset');
    const id = randomUUID();
    const action: WebhookAction = { kind: 'order_approved', orderId: c.orderId, customId: c.paymentId };
    await db
      .insertInto('provider_events')
      .values({
        id,
        provider: 'paypal',
        provider_event_id: `WH-${id}`,
        event_type: 'CHECKOUT.ORDER.APPROVED',
        resource_type: null,
        resource_id: null,
        payload: JSON.stringify(action),
      })
      .execute();
    const run = () =>
      applyProviderEvent(ctxOf(provider))(
        step({ providerEventRowId: id, provider: 'paypal', eventType: 'x' }, ProviderEventReceived),
      );
    await t.rejects(
      run(),
      /connection reset/,
      'the capture failed after the approval committed: the message will be retried',
    );
    t.equal((await pay(c.paymentId)).status, 'approved');
    provider.captureAnswer = (orderId) => orderWith(orderId, captured(c.paymentId));
    await run();
    t.equal((await pay(c.paymentId)).status, 'completed', 'the retry captured it');
    await applyProviderEvent(ctxOf(provider))(
      step({ providerEventRowId: randomUUID(), provider: 'paypal', eventType: 'x' }, ProviderEventReceived),
    );
    t.equal(provider.count('capture'), 2, 'an unknown event row changes nothing');
  },
);

t.test(
  'a new subscription replaces a past_due one for the same role: cancelled without refund, its grant ended',
  async (t) => {
    const provider = new FakeProvider();
    const old = await checkout();
    provider.captureAnswer = (orderId) => orderWith(orderId, captured(old.paymentId));
    await webhook(provider, { kind: 'order_approved', orderId: old.orderId, customId: old.paymentId });
    await db.updateTable('subscriptions').set({ status: 'past_due' }).where('id', '=', old.subscriptionId).execute();
    const next = await checkout(old.userId);
    t.equal(
      await webhook(provider, { kind: 'capture_completed', orderId: next.orderId, capture: captured(next.paymentId) }),
      'activated',
    );
    t.match(await sub(old.subscriptionId), { status: 'cancelled' });
    t.equal((await refundsOf(old.paymentId)).length, 0, 'no refund');
    const grants = await grantsOf(old.userId);
    t.equal(grants.find((g) => g.subscription_id === old.subscriptionId)?.end_reason, 'replaced by a new subscription');
    t.equal(grants.find((g) => g.subscription_id === next.subscriptionId)?.ended_at, null);
    t.equal((await sent('subscription.cancelled', (d) => d['subscriptionId'] === old.subscriptionId)).length, 1);
  },
);

t.test('a capture that does not match our payment: refunded in full at once, failed, no role', async (t) => {
  for (const [what, over] of [
    ['amount', { amount: 999 }],
    ['currency', { currency: 'EUR' }],
    ['custom_id', { customId: randomUUID() }],
  ] as const) {
    const provider = new FakeProvider();
    const c = await checkout();
    const capture = captured(c.paymentId, over);
    t.equal(
      await webhook(provider, { kind: 'capture_completed', orderId: c.orderId, capture }),
      'capture_mismatch',
      what,
    );
    t.match(await pay(c.paymentId), { status: 'failed', failure_reason: 'capture_mismatch' }, what);
    t.equal((await sub(c.subscriptionId)).status, 'cancelled', what);
    const [refund] = await refundsOf(c.paymentId);
    t.match(
      refund,
      { amount: capture.amount, currency: capture.currency, origin: 'capture_mismatch', status: 'requested' },
      what,
    );
    t.same(await grantsOf(c.userId), [], `${what}: no grant`);
    await sendRefund(provider, refund!.id);
    t.match(provider.calls.find((x) => x.op === 'refund')?.input, {
      captureId: capture.id,
      amount: capture.amount,
      currency: capture.currency,
    });
    t.match(
      await pay(c.paymentId),
      { status: 'failed', refunded_amount: capture.amount },
      `${what}: refunded, still failed`,
    );
  }
});

t.test(
  'a late capture: on a cancelled or failed payment, or for a subscription that ended, the money goes back whole',
  async (t) => {
    const provider = new FakeProvider();
    // the buyer gave up, then PayPal captured anyway
    const a = await checkout();
    await db.transaction().execute(async (trx) => {
      const p = (await payments.lock(trx, { id: a.paymentId }))!;
      await payments.transition(trx, p, { type: 'buyer_cancelled' });
    });
    t.equal(
      await webhook(provider, { kind: 'capture_completed', orderId: a.orderId, capture: captured(a.paymentId) }),
      'refunded: payment no longer open',
    );
    t.same(
      (await refundsOf(a.paymentId)).map((r) => [r.amount, r.origin]),
      [[1000, 'late_capture']],
    );
    t.equal((await sub(a.subscriptionId)).status, 'pending', 'the state machine left the subscription alone');
    // the subscription was cancelled while its payment was still open
    const b = await checkout();
    await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', b.subscriptionId).execute();
    t.equal(
      await webhook(provider, { kind: 'capture_completed', orderId: b.orderId, capture: captured(b.paymentId) }),
      'refunded: subscription ended',
    );
    t.equal((await refundsOf(b.paymentId)).length, 1);
    t.same(await grantsOf(b.userId), [], 'no grant');
  },
);

t.test(
  'capture pending, then declined: approved with the capture id kept, then failed and the subscription cancelled',
  async (t) => {
    const provider = new FakeProvider();
    const c = await checkout();
    const capture = captured(c.paymentId, { status: 'PENDING' });
    t.equal(await webhook(provider, { kind: 'capture_pending', orderId: c.orderId, capture }), 'capture pending');
    t.match(await pay(c.paymentId), { status: 'approved', provider_capture_id: capture.id });
    t.equal(
      await webhook(provider, { kind: 'capture_declined', orderId: null, capture: { ...capture, status: 'DECLINED' } }),
      'declined',
    );
    t.match(await pay(c.paymentId), { status: 'failed', failure_reason: 'declined' });
    t.equal((await sub(c.subscriptionId)).status, 'cancelled');
  },
);

t.test(
  'an order voided: the payment cancelled, the checkout with it; unknown orders and other events change nothing',
  async (t) => {
    const provider = new FakeProvider();
    const c = await checkout();
    t.equal(await webhook(provider, { kind: 'order_voided', orderId: c.orderId, customId: c.paymentId }), 'voided');
    t.equal((await pay(c.paymentId)).status, 'cancelled');
    t.equal((await sub(c.subscriptionId)).status, 'cancelled');
    t.equal(await webhook(provider, { kind: 'order_voided', orderId: c.orderId, customId: c.paymentId }), 'no-op');
    t.equal(await webhook(provider, { kind: 'order_approved', orderId: 'ORD-NOPE', customId: null }), 'unknown order');
    t.equal(await webhook(provider, { kind: 'order_voided', orderId: 'ORD-NOPE', customId: null }), 'unknown order');
    t.equal(
      await webhook(provider, { kind: 'capture_completed', orderId: null, capture: captured('not-ours') }),
      'capture names no payment of ours',
    );
    t.equal(
      await webhook(provider, {
        kind: 'capture_reversed',
        captureId: 'CAP-NOPE',
        refundId: 'R',
        amount: 1,
        currency: 'USD',
      }),
      'reversal names no payment of ours',
    );
    t.equal(
      await webhook(provider, {
        kind: 'capture_refunded',
        captureId: 'CAP-NOPE',
        refundId: 'R',
        customId: null,
        amount: 1,
        currency: 'USD',
        status: 'COMPLETED',
      }),
      'refund names no capture of ours',
    );
    t.equal(
      await webhook(provider, { kind: 'vault_token_created', vaultId: 'V', orderId: 'ORD-NOPE', customId: null }),
      'vault token for no payment of ours',
    );
    t.equal(
      await webhook(provider, { kind: 'not_supported', eventType: 'CUSTOMER.DISPUTE.CREATED' }),
      'ignored CUSTOMER.DISPUTE.CREATED',
    );
  },
);

/** An active subscription paid by its first payment, through the handlers. */
async function active(provider: FakeProvider, vaultId: string | null = 'VAULT-1') {
  const c = await checkout();
  provider.captureAnswer = (orderId) => orderWith(orderId, captured(c.paymentId), 'COMPLETED', vaultId);
  await webhook(provider, { kind: 'order_approved', orderId: c.orderId, customId: c.paymentId });
  return c;
}

t.test(
  'vault tokens: a created one is kept when none is; a deleted one is never charged, the buyer told (docs/api.md, `POST /v1/subscriptions/:id/payment-method`)',
  async (t) => {
    const provider = new FakeProvider();
    const c = await active(provider, null);
    t.equal(
      await webhook(provider, {
        kind: 'vault_token_created',
        vaultId: 'VAULT-LATE',
        orderId: c.orderId,
        customId: null,
      }),
      'vault id kept',
    );
    t.equal((await sub(c.subscriptionId)).vault_id, 'VAULT-LATE');
    await webhook(provider, {
      kind: 'vault_token_created',
      vaultId: 'VAULT-OTHER',
      orderId: c.orderId,
      customId: null,
    });
    t.equal((await sub(c.subscriptionId)).vault_id, 'VAULT-LATE', 'a known vault id is not replaced');
    t.equal(
      await webhook(provider, { kind: 'vault_token_deleted', vaultId: 'VAULT-LATE' }),
      'payment method removed from 1 subscription(s)',
    );
    t.match(await sub(c.subscriptionId), {
      status: 'active',
      vault_id: null,
      cancel_at_period_end: false,
      next_retry_at: null,
      payment_method_required: 'payment_token_deleted',
    });
    const told = await db
      .selectFrom('outbox')
      .select('envelope')
      .where('type', '=', 'subscription.payment_method_required')
      .execute();
    t.ok(
      told.some((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === c.subscriptionId),
      'subscription.payment_method_required',
    );
    // An ended subscription just forgets the token.
    await db
      .updateTable('subscriptions')
      .set({ vault_id: 'VAULT-GONE', status: 'expired' })
      .where('id', '=', c.subscriptionId)
      .execute();
    await webhook(provider, { kind: 'vault_token_deleted', vaultId: 'VAULT-GONE' });
    t.equal((await sub(c.subscriptionId)).vault_id, null);
  },
);

t.test(
  'refunds: ours confirmed by its custom_id; one made at PayPal recorded; a full external refund cancels the subscription',
  async (t) => {
    const provider = new FakeProvider();
    const c = await active(provider);
    const captureId = `CAP-${c.paymentId}`;
    // an operator's partial refund of ours, sent and confirmed
    const refundId = randomUUID();
    await db
      .insertInto('refunds')
      .values({
        id: refundId,
        payment_id: c.paymentId,
        amount: 300,
        currency: 'USD',
        status: 'requested',
        origin: 'operator',
        reason: 'goodwill',
      })
      .execute();
    provider.refundAnswer = (i) => ({
      id: `REF-${i.refundId}`,
      status: 'PENDING',
      amount: i.amount,
      currency: i.currency,
    });
    await sendRefund(provider, refundId);
    t.match(provider.calls.at(-1), {
      op: 'refund',
      input: { captureId, amount: 300, currency: 'USD', idempotencyKey: `${refundId}:refund` },
    });
    t.match((await refundsOf(c.paymentId))[0], { status: 'pending' });
    await sendRefund(provider, refundId);
    t.equal(provider.count('refund'), 1, 'a refund no longer requested is not sent again');
    t.equal(
      await webhook(provider, {
        kind: 'capture_refunded',
        captureId,
        refundId: `REF-${refundId}`,
        customId: refundId,
        amount: 300,
        currency: 'USD',
        status: 'COMPLETED',
      }),
      'our refund confirmed',
    );
    t.match(await pay(c.paymentId), { status: 'partially_refunded', refunded_amount: 300 });
    t.equal((await sent('payment.refunded', (d) => d['refundId'] === refundId)).length, 1);
    t.equal((await sub(c.subscriptionId)).status, 'active', 'a partial refund leaves the subscription');
    // the rest refunded by the merchant at PayPal
    t.equal(
      await webhook(provider, {
        kind: 'capture_refunded',
        captureId,
        refundId: 'EXT-1',
        customId: null,
        amount: 700,
        currency: 'USD',
        status: 'COMPLETED',
      }),
      'external refund recorded',
    );
    t.equal(
      await webhook(provider, {
        kind: 'capture_refunded',
        captureId,
        refundId: 'EXT-1',
        customId: null,
        amount: 700,
        currency: 'USD',
        status: 'COMPLETED',
      }),
      'no-op',
      'the same external refund twice is recorded once',
    );
    t.match(await pay(c.paymentId), { status: 'refunded', refunded_amount: 1000 });
    t.match(await sub(c.subscriptionId), { status: 'cancelled' });
    t.ok((await grantsOf(c.userId))[0]?.ended_at, 'the grant ended');
    t.equal((await sent('subscription.cancelled', (d) => d['subscriptionId'] === c.subscriptionId)).length, 1);
  },
);

t.test('refunds PayPal refuses, or that name no capture, fail and are kept for operators', async (t) => {
  const provider = new FakeProvider();
  const c = await active(provider);
  const refused = randomUUID();
  await db
    .insertInto('refunds')
    .values({
      id: refused,
      payment_id: c.paymentId,
      amount: 100,
      currency: 'USD',
      status: 'requested',
      origin: 'operator',
      reason: 'x',
    })
    .execute();
  provider.refundAnswer = () => new ProviderRefusedError(422, 'REFUND_AMOUNT_EXCEEDED', 'PayPal refund: 422');
  await sendRefund(provider, refused);
  t.match(await db.selectFrom('refunds').selectAll().where('id', '=', refused).executeTakeFirstOrThrow(), {
    status: 'failed',
    failure_reason: '422 REFUND_AMOUNT_EXCEEDED',
  });
  const open = await checkout();
  const nothing = randomUUID();
  await db
    .insertInto('refunds')
    .values({
      id: nothing,
      payment_id: open.paymentId,
      amount: 100,
      currency: 'USD',
      status: 'requested',
      origin: 'operator',
      reason: 'x',
    })
    .execute();
  await sendRefund(provider, nothing);
  t.match(await db.selectFrom('refunds').selectAll().where('id', '=', nothing).executeTakeFirstOrThrow(), {
    status: 'failed',
    failure_reason: 'no capture to refund',
  });
  t.equal(provider.count('refund'), 1, 'PayPal was not asked about a payment without a capture');
  provider.refundAnswer = () => new Error('socket hang up');
  const unknown = randomUUID();
  await db
    .insertInto('refunds')
    .values({
      id: unknown,
      payment_id: c.paymentId,
      amount: 100,
      currency: 'USD',
      status: 'requested',
      origin: 'operator',
      reason: 'x',
    })
    .execute();
  await t.rejects(sendRefund(provider, unknown), /socket hang up/, 'an unknown outcome is retried, not recorded');
  t.equal(
    (await db.selectFrom('refunds').select('status').where('id', '=', unknown).executeTakeFirstOrThrow()).status,
    'requested',
  );
  // PayPal then reports the refused one refunded after all: the money went back, so it is recorded
  // completed (the refund machine takes PayPal's word over our failure), once, with its credit note.
  const reported: WebhookAction = {
    kind: 'capture_refunded',
    captureId: `CAP-${c.paymentId}`,
    refundId: 'PP-REFUND-LATE',
    customId: refused,
    amount: 100,
    currency: 'USD',
    status: 'COMPLETED',
  };
  t.equal(await webhook(provider, reported), 'our refund confirmed');
  t.match(await db.selectFrom('refunds').selectAll().where('id', '=', refused).executeTakeFirstOrThrow(), {
    status: 'completed',
    provider_refund_id: 'PP-REFUND-LATE',
  });
  await webhook(provider, reported);
  t.equal((await sent('payment.refunded', (d) => d['refundId'] === refused)).length, 1, 'payment.refunded once');
  t.ok(
    (await sent('payment.refunded', (d) => d['refundId'] === refused))[0]!['creditNoteNumber'],
    'with its credit note',
  );
});

t.test('a chargeback of an older period changes only that payment', async (t) => {
  const provider = new FakeProvider();
  const c = await active(provider);
  await db
    .updateTable('payments')
    .set({ period_start: new Date(Date.now() - 60 * 86_400_000), period_end: new Date(Date.now() - 30 * 86_400_000) })
    .where('id', '=', c.paymentId)
    .execute();
  t.equal(
    await webhook(provider, {
      kind: 'capture_reversed',
      captureId: `CAP-${c.paymentId}`,
      refundId: 'REV-1',
      amount: 1000,
      currency: 'USD',
    }),
    'reversed',
  );
  t.equal((await pay(c.paymentId)).status, 'reversed');
  t.equal((await sub(c.subscriptionId)).status, 'active');
  t.equal(
    await webhook(provider, {
      kind: 'capture_reversed',
      captureId: `CAP-${c.paymentId}`,
      refundId: 'REV-1',
      amount: 1000,
      currency: 'USD',
    }),
    'no-op',
  );
});

t.test('a look-up: unknown, settled, approved (captured), voided, or a checkout past its time to live', async (t) => {
  const provider = new FakeProvider();
  await checkOrder(provider, 'ORD-UNKNOWN');
  t.equal(provider.count('getOrder'), 0, 'an order of no payment of ours is not looked up');
  const approved = await checkout();
  provider.orderAnswer = (orderId) => orderWith(orderId, null, 'APPROVED');
  provider.captureAnswer = (orderId) => orderWith(orderId, captured(approved.paymentId));
  await checkOrder(provider, approved.orderId);
  t.equal((await pay(approved.paymentId)).status, 'completed', 'an approved order is captured');
  await checkOrder(provider, approved.orderId);
  t.equal(provider.count('getOrder'), 1, 'a settled payment is not looked up again');
  const voided = await checkout();
  provider.orderAnswer = (orderId) => orderWith(orderId, null, 'VOIDED');
  await checkOrder(provider, voided.orderId);
  t.equal((await pay(voided.paymentId)).status, 'cancelled');
  const stale = await checkout();
  provider.orderAnswer = (orderId) => orderWith(orderId, null, 'PAYER_ACTION_REQUIRED');
  await checkOrder(provider, stale.orderId, false);
  t.equal((await pay(stale.paymentId)).status, 'pending', 'before the time to live the buyer may still approve');
  await checkOrder(provider, stale.orderId, true);
  t.match(await pay(stale.paymentId), { status: 'cancelled', failure_reason: 'checkout_expired' });
  t.equal((await sub(stale.subscriptionId)).status, 'cancelled');
});

t.test('a capture PayPal declines (422 INSTRUMENT_DECLINED) fails the payment and cancels the checkout', async (t) => {
  const provider = new FakeProvider();
  const c = await checkout();
  provider.captureAnswer = () => new ProviderRefusedError(422, 'INSTRUMENT_DECLINED', 'declined');
  await webhook(provider, { kind: 'order_approved', orderId: c.orderId, customId: c.paymentId });
  t.match(await pay(c.paymentId), { status: 'failed', failure_reason: 'declined' });
  t.equal((await sub(c.subscriptionId)).status, 'cancelled');
  t.same(await grantsOf(c.userId), []);
});

/** A renewal payment for period 1 of an active subscription, as the scheduler claims it. */
async function renewal(provider: FakeProvider, vaultId: string | null = 'VAULT-1') {
  const c = await active(provider, vaultId);
  const paymentId = randomUUID();
  await db.transaction().execute((trx) =>
    payments.create(trx, {
      id: paymentId,
      subscription_id: c.subscriptionId,
      user_id: c.userId,
      kind: 'renewal',
      amount: 1000,
      currency: 'USD',
      period_index: 1,
    }),
  );
  return { ...c, renewalId: paymentId };
}

t.test(
  'renewals: charged through the vault; an APPROVED answer captured; declines and refusals start dunning',
  async (t) => {
    const provider = new FakeProvider();
    const ok = await renewal(provider);
    provider.chargeAnswer = (i) => orderWith(`ORD-R-${i.paymentId}`, captured(i.paymentId));
    await chargeRenewal(provider, ok.renewalId);
    t.match(provider.calls.at(-1), {
      op: 'chargeVaulted',
      input: { vaultId: 'VAULT-1', amount: 1000, currency: 'USD', idempotencyKey: `${ok.renewalId}:charge` },
    });
    t.match(await pay(ok.renewalId), { status: 'completed', provider_order_id: `ORD-R-${ok.renewalId}` });
    const after = await sub(ok.subscriptionId);
    t.equal(
      after.paid_through?.getTime(),
      (await pay(ok.renewalId)).period_end?.getTime(),
      'paid through the renewed period',
    );
    t.equal((await sent('subscription.renewed', (d) => d['subscriptionId'] === ok.subscriptionId)).length, 1);
    await chargeRenewal(provider, ok.renewalId);
    t.equal(provider.count('chargeVaulted'), 1, 'a completed renewal is never charged again');

    const approved = await renewal(provider);
    provider.chargeAnswer = (i) => orderWith(`ORD-R-${i.paymentId}`, null, 'APPROVED');
    provider.captureAnswer = (orderId) => orderWith(orderId, captured(approved.renewalId));
    await chargeRenewal(provider, approved.renewalId);
    t.equal((await pay(approved.renewalId)).status, 'completed', 'captured explicitly when PayPal answered APPROVED');

    for (const [issue, reason] of [
      ['INSTRUMENT_DECLINED', 'declined'],
      ['PAYEE_ACCOUNT_RESTRICTED', 'provider_error'],
    ] as const) {
      const r = await renewal(provider);
      provider.chargeAnswer = () => new ProviderRefusedError(422, issue, issue);
      await chargeRenewal(provider, r.renewalId);
      t.match(await pay(r.renewalId), { status: 'failed', failure_reason: reason }, issue);
      const s = await sub(r.subscriptionId);
      t.match(s, { status: 'past_due', dunning_attempts: 1 }, `${issue}: past_due, the grant kept`);
      t.equal(
        s.next_retry_at?.getTime(),
        s.dunning_started_at!.getTime() + 60_000,
        'retry 1 at the first failure + DUNNING_RETRY_MS[0]',
      );
      t.equal((await grantsOf(r.userId))[0]?.ended_at, null);
      t.equal(
        (await sent('subscription.renewal_failed', (d) => d['subscriptionId'] === r.subscriptionId))[0]?.['reason'],
        reason,
      );
    }

    const none = await renewal(provider, null);
    await chargeRenewal(provider, none.renewalId);
    t.match(await pay(none.renewalId), { status: 'failed', failure_reason: 'no_payment_method' });
    t.equal((await sub(none.subscriptionId)).status, 'past_due');

    const ended = await renewal(provider);
    await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', ended.subscriptionId).execute();
    const charges = provider.count('chargeVaulted');
    await chargeRenewal(provider, ended.renewalId);
    t.match(await pay(ended.renewalId), { status: 'cancelled', failure_reason: null });
    t.equal(provider.count('chargeVaulted'), charges, 'a renewal of an ended subscription is not charged');
  },
);

t.test(
  'the last dunning retry failing: expired at once when the paid time is over, else at the period end',
  async (t) => {
    const provider = new FakeProvider();
    provider.chargeAnswer = () => new ProviderRefusedError(422, 'INSTRUMENT_DECLINED', 'declined');
    const over = await renewal(provider);
    await db
      .updateTable('subscriptions')
      .set({
        status: 'past_due',
        dunning_attempts: 2,
        dunning_started_at: new Date(Date.now() - 3_600_000),
        paid_through: new Date(Date.now() - 1000),
      })
      .where('id', '=', over.subscriptionId)
      .execute();
    await chargeRenewal(provider, over.renewalId);
    t.match(await sub(over.subscriptionId), { status: 'expired', next_retry_at: null });
    t.ok((await grantsOf(over.userId))[0]?.ended_at, 'the grant ended');
    t.equal((await sent('subscription.expired', (d) => d['subscriptionId'] === over.subscriptionId)).length, 1);
    t.equal(
      (await sent('subscription.renewal_failed', (d) => d['subscriptionId'] === over.subscriptionId))[0]?.[
        'nextRetryAt'
      ],
      null,
    );

    const paidLeft = await renewal(provider);
    await db
      .updateTable('subscriptions')
      .set({ status: 'past_due', dunning_attempts: 2, dunning_started_at: new Date() })
      .where('id', '=', paidLeft.subscriptionId)
      .execute();
    await chargeRenewal(provider, paidLeft.renewalId);
    t.match(await sub(paidLeft.subscriptionId), {
      status: 'past_due',
      cancel_at_period_end: true,
      next_retry_at: null,
    });
    t.equal((await grantsOf(paidLeft.userId))[0]?.ended_at, null, 'the grant lasts until the paid time ends');
  },
);

t.test('a renewal captured after its subscription ended is refunded whole, the period not recorded', async (t) => {
  const provider = new FakeProvider();
  for (const ended of ['cancelled', 'expired'] as const) {
    const r = await renewal(provider);
    await db.transaction().execute(async (trx) => {
      const p = (await payments.lock(trx, { id: r.renewalId }))!;
      await payments.transition(trx, p, { type: 'order_created' }, { provider_order_id: `ORD-R-${r.renewalId}` });
    });
    const before = await sub(r.subscriptionId);
    await db.updateTable('subscriptions').set({ status: ended }).where('id', '=', r.subscriptionId).execute();
    const outcome = await webhook(provider, {
      kind: 'capture_completed',
      orderId: `ORD-R-${r.renewalId}`,
      capture: captured(r.renewalId),
    });
    t.equal(outcome, 'refunded: subscription ended', ended);
    t.same(
      (await refundsOf(r.renewalId)).map((x) => [x.amount, x.origin]),
      [[1000, 'late_capture']],
      `${ended}: the whole capture goes back`,
    );
    t.equal(
      (await sub(r.subscriptionId)).paid_through?.getTime(),
      before.paid_through?.getTime(),
      `${ended}: no period added`,
    );
    t.same(
      await sent('subscription.renewed', (d) => d['subscriptionId'] === r.subscriptionId),
      [],
      `${ended}: no renewal announced`,
    );
  }
});

t.test(
  'a window of capture webhooks in one transaction: each activated, their receipts numbered together at its end, in order',
  async (t) => {
    const { applyProviderEventInWindow, paymentWindow } = await import('../src/handlers/apply-provider-event.js');
    const provider = new FakeProvider();
    const buyers = [await checkout(), await checkout(), await checkout()];
    const rows: string[] = [];
    for (const c of buyers) {
      const id = randomUUID();
      const action: WebhookAction = { kind: 'capture_completed', orderId: c.orderId, capture: captured(c.paymentId) };
      await db
        .insertInto('provider_events')
        .values({
          id,
          provider: 'paypal',
          provider_event_id: `WH-${id}`,
          event_type: action.kind,
          resource_type: null,
          resource_id: null,
          payload: JSON.stringify(action),
        })
        .execute();
      rows.push(id);
    }
    const apply = applyProviderEventInWindow(ctxOf(provider), db);
    const window = paymentWindow.open();
    const afters = await db.transaction().execute(async (trx) => {
      const out = [];
      for (const id of rows)
        out.push(
          await apply({
            trx,
            envelope: makeEnvelope(ProviderEventReceived, {
              providerEventRowId: id,
              provider: 'paypal',
              eventType: 'capture_completed',
            }),
            attempt: 0,
            logger,
            window,
          }),
        );
      t.equal(window.receipts.size, 0, 'applied at the end of the window, not message by message');
      t.equal(
        (
          await trx
            .selectFrom('receipts')
            .select('id')
            .where(
              'payment_id',
              'in',
              buyers.map((b) => b.paymentId),
            )
            .execute()
        ).length,
        0,
      );
      await paymentWindow.close(trx, window);
      return out;
    });
    for (const after of afters) await afterClosed(after)?.();
    t.equal(provider.calls.length, 0, 'nothing to do after the commit for a capture');
    const receipts = await db
      .selectFrom('receipts')
      .select(['payment_id', 'sequence'])
      .where(
        'payment_id',
        'in',
        buyers.map((b) => b.paymentId),
      )
      .execute();
    const seqs = buyers.map((b) => receipts.find((r) => r.payment_id === b.paymentId)!.sequence);
    t.same(seqs, [seqs[0], seqs[0]! + 1, seqs[0]! + 2], 'numbered in the order the window applied them, no gap');
    for (const b of buyers) {
      t.equal((await sub(b.subscriptionId)).status, 'active');
      t.equal((await sent('payment.completed', (d) => d['paymentId'] === b.paymentId)).length, 1, 'its message once');
    }
  },
);

/** A webhook stored as the gateway stores it; its row id. */
async function stored(action: WebhookAction): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('provider_events')
    .values({
      id,
      provider: 'paypal',
      provider_event_id: `WH-${id}`,
      event_type: action.kind,
      resource_type: null,
      resource_id: null,
      payload: JSON.stringify(action),
    })
    .execute();
  return id;
}
/** The stored events applied as one window of the consumer, then what each left to do after the commit. */
async function inWindow(provider: FakeProvider, ids: string[]): Promise<void> {
  const { applyProviderEventInWindow, paymentWindow } = await import('../src/handlers/apply-provider-event.js');
  const apply = applyProviderEventInWindow(ctxOf(provider), db);
  const window = paymentWindow.open();
  const afters = await db.transaction().execute(async (trx) => {
    const out = [];
    for (const id of ids)
      out.push(
        await apply({
          trx,
          envelope: makeEnvelope(ProviderEventReceived, { providerEventRowId: id, provider: 'paypal', eventType: 'x' }),
          attempt: 0,
          logger,
          window,
        }),
      );
    await paymentWindow.close(trx, window);
    return out;
  });
  for (const after of afters) await afterClosed(after)?.();
}
const outcomeOf = async (id: string) =>
  await db
    .selectFrom('provider_events')
    .select(['outcome', 'payment_id', 'processed_at'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();

t.test(
  'captures in windows: set-based and one at a time write the same rows, grants, messages and receipts',
  async (t) => {
    const provider = new FakeProvider();
    const windowed = [await checkout(), await checkout(), await checkout()];
    const single = [await checkout(), await checkout(), await checkout()];
    const ids = await Promise.all(
      windowed.map((c) => stored({ kind: 'capture_completed', orderId: c.orderId, capture: captured(c.paymentId) })),
    );
    await inWindow(provider, ids);
    for (const c of single)
      await db.transaction().execute((trx) =>
        onPaymentEvent(ctxOf(provider), trx, {
          kind: 'capture_completed',
          orderId: c.orderId,
          capture: captured(c.paymentId),
        }),
      );
    const stateOf = async (c: Awaited<ReturnType<typeof checkout>>) => {
      const p = await pay(c.paymentId);
      const s = await sub(c.subscriptionId);
      return {
        payment: {
          status: p.status,
          failure_reason: p.failure_reason,
          capture: p.provider_capture_id?.replace(c.paymentId, ''),
          order: p.provider_order_id?.replace(c.paymentId, ''),
          startsAtAnchor: p.period_start?.getTime() === s.anchor_at?.getTime(),
          endsAtPaidThrough: p.period_end?.getTime() === s.paid_through?.getTime(),
          days: Math.round((p.period_end!.getTime() - p.period_start!.getTime()) / 86_400_000),
        },
        sub: {
          status: s.status,
          cancel_at_period_end: s.cancel_at_period_end,
          approval_url: s.approval_url,
          vault_id: s.vault_id,
          version: s.version,
        },
        grants: (await grantsOf(c.userId)).map((g) => [g.role, g.source, g.reason, g.held_before, g.ended_at]),
        roles: (await sent('role.change.requested', (d) => d['userId'] === c.userId)).map((d) => ({
          ...d,
          userId: 'x',
        })),
        activated: (await sent('subscription.activated', (d) => d['subscriptionId'] === c.subscriptionId)).length,
        completed: (await sent('payment.completed', (d) => d['paymentId'] === c.paymentId)).length,
        receipts: (await db.selectFrom('receipts').select('id').where('payment_id', '=', c.paymentId).execute()).length,
      };
    };
    for (const [i, c] of windowed.entries()) {
      const a = await stateOf(c);
      t.same(a, await stateOf(single[i]!), `buyer ${i}: the same rows and messages`);
      t.match(a, {
        payment: { status: 'completed' },
        sub: { status: 'active' },
        activated: 1,
        completed: 1,
        receipts: 1,
      });
      t.match(await outcomeOf(ids[i]!), { outcome: 'activated', payment_id: c.paymentId });
      t.ok((await outcomeOf(ids[i]!)).processed_at, 'marked processed');
    }
    await inWindow(provider, ids);
    t.equal(
      (await sent('subscription.activated', (d) => windowed.some((c) => c.subscriptionId === d['subscriptionId'])))
        .length,
      3,
      'the window again: nothing more',
    );
    t.equal(provider.calls.length, 0, 'no PayPal call for a capture PayPal reported');
  },
);

t.test('a window mixing the common case with the others: each event has the outcome it has alone', async (t) => {
  const provider = new FakeProvider();
  const plain = await checkout();
  const mismatch = await checkout();
  const twice = await checkout();
  const late = await checkout();
  await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', late.subscriptionId).execute();
  const old = await checkout();
  await db.updateTable('subscriptions').set({ status: 'past_due' }).where('id', '=', old.subscriptionId).execute();
  const replacing = await checkout(old.userId);
  const chargedBack = await checkout();
  const done = await checkout();
  const doneEvent = await stored({
    kind: 'capture_completed',
    orderId: done.orderId,
    capture: captured(done.paymentId),
  });
  await inWindow(provider, [doneEvent]);
  const ids = {
    plain: await stored({ kind: 'capture_completed', orderId: plain.orderId, capture: captured(plain.paymentId) }),
    mismatch: await stored({
      kind: 'capture_completed',
      orderId: mismatch.orderId,
      capture: captured(mismatch.paymentId, { amount: 999 }),
    }),
    twiceApproved: await stored({ kind: 'order_approved', orderId: twice.orderId, customId: twice.paymentId }),
    twiceCaptured: await stored({
      kind: 'capture_completed',
      orderId: twice.orderId,
      capture: captured(twice.paymentId),
    }),
    late: await stored({ kind: 'capture_completed', orderId: late.orderId, capture: captured(late.paymentId) }),
    replacing: await stored({
      kind: 'capture_completed',
      orderId: replacing.orderId,
      capture: captured(replacing.paymentId),
    }),
    // A chargeback delivered before its capture: applied in the order they came, it names no
    // capture of ours yet, and the capture then activates (the capture is not taken ahead of it).
    reversedFirst: await stored({
      kind: 'capture_reversed',
      captureId: `CAP-${chargedBack.paymentId}`,
      refundId: `R-${chargedBack.paymentId}`,
      amount: 1000,
      currency: 'USD',
    }),
    capturedAfter: await stored({
      kind: 'capture_completed',
      orderId: chargedBack.orderId,
      capture: captured(chargedBack.paymentId),
    }),
    unknown: await stored({ kind: 'capture_completed', orderId: 'ORD-NONE', capture: captured(randomUUID()) }),
    notUuid: await stored({ kind: 'capture_completed', orderId: null, capture: captured('not-a-uuid') }),
  };
  await inWindow(provider, [...Object.values(ids), doneEvent, ids.plain]);
  t.match(await outcomeOf(ids.plain), { outcome: 'activated' });
  t.match(await pay(plain.paymentId), { status: 'completed' });
  t.match(await pay(mismatch.paymentId), { status: 'failed', failure_reason: 'capture_mismatch' });
  t.equal((await refundsOf(mismatch.paymentId)).length, 1, 'the mismatched capture refunded');
  t.match(await sub(mismatch.subscriptionId), { status: 'cancelled' });
  t.match(await pay(twice.paymentId), { status: 'completed' });
  t.equal(
    (await sent('subscription.activated', (d) => d['subscriptionId'] === twice.subscriptionId)).length,
    1,
    'an approval and its capture in one window: activated once',
  );
  t.equal(provider.count('capture'), 0, 'the approval, applied after its capture, captures nothing');
  t.equal((await refundsOf(late.paymentId)).length, 1, 'a capture for an ended subscription refunded');
  t.match(await sub(late.subscriptionId), { status: 'cancelled' });
  t.match(await sub(replacing.subscriptionId), { status: 'active' });
  t.match(await sub(old.subscriptionId), { status: 'cancelled' }, 'the past_due one replaced');
  t.match(await outcomeOf(ids.reversedFirst), { outcome: 'reversal names no payment of ours' });
  t.match(await sub(chargedBack.subscriptionId), { status: 'active' }, 'in message order: the capture after');
  t.match(await outcomeOf(ids.unknown), { outcome: 'capture names no payment of ours' });
  t.match(await outcomeOf(ids.notUuid), { outcome: 'capture names no payment of ours' });
  t.equal(
    (await sent('subscription.activated', (d) => d['subscriptionId'] === done.subscriptionId)).length,
    1,
    'an event applied before, in the window again: nothing more',
  );
  const receipts = await db
    .selectFrom('receipts')
    .select('payment_id')
    .where(
      'payment_id',
      'in',
      [plain, twice, replacing, done, mismatch, late].map((c) => c.paymentId),
    )
    .execute();
  t.same(
    receipts.map((r) => r.payment_id).sort(),
    [plain, twice, replacing, done, late].map((c) => c.paymentId).sort(),
    'a receipt for each capture kept or refunded late, none for the mismatch, none twice',
  );
});

t.test(
  'renewal charges answered in the same turn record in one transaction (group commit), receipts numbered together',
  async (t) => {
    const { paymentWindow } = await import('../src/payments/window.js');
    const provider = new FakeProvider();
    const due = [await renewal(provider), await renewal(provider), await renewal(provider), await renewal(provider)];
    provider.chargeAnswer = (i) => orderWith(`ORD-G-${i.paymentId}`, captured(i.paymentId));
    const records = new TransactionGroup(db, paymentWindow, 32, 50);
    const ctx = { ...ctxOf(provider), records };
    await Promise.all(
      due.map((r) => chargeRenewalHandler(ctx)(step({ paymentId: r.renewalId }, RenewalChargeRequested))),
    );
    t.ok(
      records.stats.groups >= 1 && records.stats.transactions > 1,
      `recorded in groups (${JSON.stringify(records.stats)})`,
    );
    for (const r of due) t.equal((await pay(r.renewalId)).status, 'completed');
    const seqs = (
      await db
        .selectFrom('receipts')
        .select('sequence')
        .where(
          'payment_id',
          'in',
          due.map((r) => r.renewalId),
        )
        .orderBy('sequence')
        .execute()
    ).map((r) => r.sequence);
    t.equal(seqs.length, 4, 'a receipt each');
    t.same(seqs, [seqs[0], seqs[0]! + 1, seqs[0]! + 2, seqs[0]! + 3], 'contiguous');
    t.equal(provider.count('chargeVaulted'), 4, 'each charged once');
  },
);

t.test(
  'renewals in a window: decided with one locking read, the common answers completed set-based, every other case as alone',
  async (t) => {
    const { chargeRenewalInWindow, RenewalAnswers } = await import('../src/payments/renewal-charges.js');
    const { paymentWindow } = await import('../src/payments/window.js');
    const provider = new FakeProvider();
    const plain = [await renewal(provider), await renewal(provider), await renewal(provider)];
    const declined = await renewal(provider);
    const pendingCapture = await renewal(provider);
    const ended = await renewal(provider);
    await db.transaction().execute(async (trx) => {
      const s = (await subscriptions.lock(trx, ended.subscriptionId))!;
      await subscriptions.transition(trx, s, { type: 'cancel_immediately' });
    });
    provider.chargeAnswer = (i) =>
      i.paymentId === declined.renewalId
        ? new ProviderRefusedError(422, 'INSTRUMENT_DECLINED', 'declined')
        : orderWith(
            `ORD-W-${i.paymentId}`,
            captured(i.paymentId, i.paymentId === pendingCapture.renewalId ? { status: 'PENDING' } : {}),
          );
    const ctx: PaymentContext = ctxOf(provider);
    const answers = new RenewalAnswers(ctx, db, 64, 50);
    ctx.charges = answers;
    const all = [...plain, declined, pendingCapture, ended];
    // The window as the consumer runs it: each message's part, the window's close, then (after the commit) what each returned.
    const window = paymentWindow.open();
    const afters = await db.transaction().execute(async (trx) => {
      const out = [];
      for (const r of all) {
        const envelope = makeEnvelope(RenewalChargeRequested, { paymentId: r.renewalId });
        out.push(await chargeRenewalInWindow(ctx, db)({ trx, envelope, attempt: 0, logger, window }));
      }
      await paymentWindow.close(trx, window);
      return out;
    });
    t.equal(provider.count('chargeVaulted'), 0, 'nothing charged inside the transaction');
    await Promise.all(afters.map((a) => afterClosed(a)!()));
    t.equal(provider.count('chargeVaulted'), 5, 'each live renewal charged once; the ended one not at all');
    t.equal(answers.stats.completedSetBased, 3, `the plain ones set-based (${JSON.stringify(answers.stats)})`);
    for (const r of plain) {
      t.match(await pay(r.renewalId), {
        status: 'completed',
        provider_order_id: `ORD-W-${r.renewalId}`,
        provider_capture_id: `CAP-${r.renewalId}`,
      });
      const s = await sub(r.subscriptionId);
      t.equal(s.status, 'active');
      t.equal(
        s.paid_through?.toISOString(),
        (await pay(r.renewalId)).period_end?.toISOString(),
        'paid through its period',
      );
      t.equal((await sent('subscription.renewed', (d) => d['subscriptionId'] === r.subscriptionId)).length, 1);
      t.equal((await sent('payment.completed', (d) => d['paymentId'] === r.renewalId)).length, 1, 'its receipt');
    }
    t.match(await pay(declined.renewalId), { status: 'failed' });
    t.equal((await sub(declined.subscriptionId)).status, 'past_due', 'a decline starts dunning');
    // A capture PayPal holds for review: approved with its capture id, waiting for its webhook (as alone).
    t.match(await pay(pendingCapture.renewalId), {
      status: 'approved',
      provider_capture_id: `CAP-${pendingCapture.renewalId}`,
    });
    t.match(await pay(ended.renewalId), { status: 'cancelled' });
    // A window again (a redelivery): nothing is charged twice.
    const again = paymentWindow.open();
    const afters2 = await db.transaction().execute(async (trx) => {
      const out = [];
      for (const r of all) {
        const envelope = makeEnvelope(RenewalChargeRequested, { paymentId: r.renewalId });
        out.push(await chargeRenewalInWindow(ctx, db)({ trx, envelope, attempt: 1, logger, window: again }));
      }
      await paymentWindow.close(trx, again);
      return out;
    });
    await Promise.all(afters2.map((a) => afterClosed(a)!()));
    t.equal(provider.count('chargeVaulted'), 5, 'no second charge');
  },
);

t.test('renewal answers: a full group does not wait; a group that fails is redone one at a time', async (t) => {
  const { RenewalAnswers } = await import('../src/payments/renewal-charges.js');
  const provider = new FakeProvider();
  const due = [await renewal(provider), await renewal(provider), await renewal(provider)];
  // One payment has its receipt already (a state no path leaves, used here to make the group's
  // numbering fail): the group rolls back whole, and each is recorded again on its own.
  await db.transaction().execute((trx) => pay(due[0]!.renewalId).then((p) => issueReceipt(trx, p, 'issued before')));
  const answers = new RenewalAnswers(ctxOf(provider), db, 3, 60_000);
  const outcomes = await Promise.all(
    due.map((r) => answers.record(r.renewalId, orderWith(`ORD-F-${r.renewalId}`, captured(r.renewalId)))),
  );
  t.same(outcomes, ['renewed', 'renewed', 'renewed'], 'three at the most: flushed at once, not after a minute');
  t.same(answers.stats, { groups: 0, completedSetBased: 0, redone: 1 }, 'the group failed and was redone');
  for (const r of due) t.equal((await pay(r.renewalId)).status, 'completed');
  const receipts = await db
    .selectFrom('receipts')
    .select('description')
    .where(
      'payment_id',
      'in',
      due.map((r) => r.renewalId),
    )
    .execute();
  t.equal(receipts.length, 3, 'one receipt each, the one issued before kept');
  // A group of one that fails: its caller gets the error.
  const away = {
    transaction: () => ({
      execute: async () => {
        throw new Error('database away');
      },
    }),
  } as unknown as typeof db;
  const alone = new RenewalAnswers(ctxOf(provider), away, 64, 1);
  await t.rejects(alone.record(randomUUID(), orderWith('ORD-X', null)), /database away/);
});

t.test(
  'renewal answers: a capture that does not match its payment, and two of one subscription, are not set-based',
  async (t) => {
    const { RenewalAnswers } = await import('../src/payments/renewal-charges.js');
    const provider = new FakeProvider();
    const short = await renewal(provider);
    const twice = await renewal(provider);
    // The next period of the same subscription, charged in the same group (a renewal paid ahead).
    const nextId = randomUUID();
    await db.transaction().execute((trx) =>
      payments.create(trx, {
        id: nextId,
        subscription_id: twice.subscriptionId,
        user_id: twice.userId,
        kind: 'renewal',
        amount: 1000,
        currency: 'USD',
        period_index: 2,
      }),
    );
    const answers = new RenewalAnswers(ctxOf(provider), db, 64, 50);
    const outcomes = await Promise.all([
      answers.record(
        short.renewalId,
        orderWith(`ORD-S-${short.renewalId}`, captured(short.renewalId, { amount: 900 })),
      ),
      answers.record(twice.renewalId, orderWith(`ORD-T-${twice.renewalId}`, captured(twice.renewalId))),
      answers.record(nextId, orderWith(`ORD-N-${nextId}`, captured(nextId))),
    ]);
    t.equal(outcomes[0], 'capture_mismatch', 'a capture of another amount: refunded, as alone');
    t.equal(answers.stats.completedSetBased, 0, 'none set-based');
    t.match(await pay(short.renewalId), { status: 'failed' });
    t.equal((await pay(twice.renewalId)).status, 'completed');
    t.equal((await pay(nextId)).status, 'completed');
    t.equal(
      (await sub(twice.subscriptionId)).paid_through?.toISOString(),
      (await pay(nextId)).period_end?.toISOString(),
      'paid through the later period, both periods recorded',
    );
  },
);

t.test(
  "a dispute: refunds held while it is open; an operator's answer sent once per request id, refused ones recorded",
  async (t) => {
    const provider = new FakeProvider();
    const c = await active(provider);
    const dispute = {
      disputeId: `PP-D-${c.paymentId.slice(0, 8)}`,
      captureIds: [`CAP-${c.paymentId}`],
      amount: 1000,
      currency: 'USD',
      reason: 'UNAUTHORISED',
      status: 'OPEN',
      stage: 'CHARGEBACK',
      outcome: null,
      updatedAt: '2026-12-01T10:00:00.000Z',
    };
    t.equal(await webhook(provider, { kind: 'dispute_changed', dispute }), 'dispute opened');
    const held = randomUUID();
    await db
      .insertInto('refunds')
      .values({
        id: held,
        payment_id: c.paymentId,
        amount: 100,
        currency: 'USD',
        status: 'requested',
        origin: 'user_cancel',
        reason: 'x',
      })
      .execute();
    await sendRefund(provider, held);
    t.equal(provider.count('refund'), 0, 'PayPal is not asked to refund a disputed capture');

    const { id: disputeRowId } = await db
      .selectFrom('disputes')
      .select('id')
      .where('provider_dispute_id', '=', dispute.disputeId)
      .executeTakeFirstOrThrow();
    const ask = (action: 'accept_claim' | 'provide_evidence') =>
      db.transaction().execute(async (trx) => {
        const r = await requestDisputeAction(trx, disputeRowId, action, 'logs show use', 'op');
        if (typeof r === 'string') throw new Error(r);
        return r.id;
      });
    const send = (id: string) =>
      sendDisputeActionHandler(ctxOf(provider))(step({ disputeActionId: id }, DisputeActionRequested));
    const statusOf = async (id: string) =>
      db.selectFrom('dispute_actions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    const evidence = await ask('provide_evidence');
    provider.disputeAnswer = () => new Error('socket hang up');
    await t.rejects(send(evidence), /socket hang up/, 'an unknown outcome is retried, not recorded');
    t.match(await statusOf(evidence), { status: 'requested' });
    provider.disputeAnswer = () => undefined;
    await send(evidence);
    await send(evidence);
    t.match(await statusOf(evidence), { status: 'sent' });
    t.same(
      provider.calls.filter((x) => x.op === 'provideDisputeEvidence').map((x) => x.input),
      [1, 2].map(() => ({
        action: 'provide_evidence',
        disputeId: dispute.disputeId,
        note: 'logs show use',
        idempotencyKey: `${evidence}:dispute`,
      })),
      'both tries with one request id; the redelivery after it was sent calls nobody',
    );

    const accept = await ask('accept_claim');
    provider.disputeAnswer = () => new ProviderRefusedError(422, 'ACTION_NOT_ALLOWED', 'refused');
    await send(accept);
    t.match(await statusOf(accept), { status: 'refused', failure_reason: '422 ACTION_NOT_ALLOWED' });

    // Lost: the payment reversed, the subscription cancelled, the held refund failed.
    t.equal(
      await webhook(provider, {
        kind: 'dispute_changed',
        dispute: {
          ...dispute,
          status: 'RESOLVED',
          outcome: 'RESOLVED_BUYER_FAVOUR',
          updatedAt: '2026-12-02T10:00:00Z',
        },
      }),
      'dispute lost; payment reversed; subscription cancelled',
    );
    t.match(await db.selectFrom('refunds').selectAll().where('id', '=', held).executeTakeFirstOrThrow(), {
      status: 'failed',
      failure_reason: 'the dispute returned the money',
    });
  },
);
