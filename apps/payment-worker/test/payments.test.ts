import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { ProviderRefusedError, type CaptureInfo, type PaymentProvider } from '@billing/payments';
import { createLogger, createMetrics } from '@billing/service-kit';
import { FakeProvider, inputsOf } from './fake-provider.js';
import { chargePlanChangeHandler, chargeRenewal, chargeRenewalHandler } from '../src/handlers/charge-renewal.js';
import {
  CAPTURE_NEEDED,
  onPaymentEvent,
  paidWithoutCharge,
  renewalOutcome,
  payments as pays,
  recordCapture,
  recordOrder,
  requestPlanChange,
  startTrial,
} from '@billing/billing-core';
import { checkOrder } from '../src/handlers/check-order.js';
import { paymentMethodApprovedHandler, replacePaymentMethod } from '../src/handlers/payment-method.js';
import { sendRefund } from '../src/handlers/send-refund.js';
import { captureApproved } from '../src/payments/capture.js';
import type { PaymentContext } from '../src/payments/context.js';

// The payment-worker's money logic in-process against a real, migrated database, with a fake
// PaymentProvider that records what it was asked (docs/guarantees.md).
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  {
    id: 'hourly',
    name: 'Hourly',
    description: '',
    amount: 1200,
    currency: 'USD',
    period: 'PT1H',
    role: 'hourly',
    active: true,
  },
]);
const logger = createLogger({
  service: 'test',
  level: 'error',
  stream: new Writable({
    write(_c, _e, cb) {
      cb();
    },
  }),
});

const HOUR = 3_600_000;

/** An active hourly subscription in its first period, paid by a completed initial payment. */
async function activeSubscription(opts: { cancelAtPeriodEnd?: boolean; startedAgoMs?: number } = {}) {
  const anchor = new Date(Date.now() - (opts.startedAgoMs ?? 30 * 60_000));
  const sub = {
    id: randomUUID(),
    user_id: `u-${randomUUID()}`,
    plan_id: 'hourly',
    plan_name: 'Hourly',
    role: 'hourly',
    amount: 1200,
    currency: 'USD',
    period: 'PT1H',
    status: 'active' as const,
    anchor_at: anchor,
    paid_through: new Date(anchor.getTime() + HOUR),
    vault_id: 'VAULT-1',
    cancel_at_period_end: opts.cancelAtPeriodEnd ?? false,
  };
  await db.insertInto('subscriptions').values(sub).execute();
  await db
    .insertInto('payments')
    .values({
      id: randomUUID(),
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'initial',
      amount: 1200,
      currency: 'USD',
      status: 'completed',
      period_index: 0,
      period_start: anchor,
      period_end: new Date(anchor.getTime() + HOUR),
      provider_capture_id: `CAP-I-${sub.id}`,
    })
    .execute();
  await db
    .insertInto('role_grants')
    .values({ id: randomUUID(), user_id: sub.user_id, role: 'hourly', source: 'subscription', subscription_id: sub.id })
    .execute();
  return sub;
}

async function renewalPayment(
  subId: string,
  userId: string,
  attempt = 0,
  status: 'created' | 'pending' | 'approved' = 'created',
) {
  const id = randomUUID();
  await db
    .insertInto('payments')
    .values({
      id,
      subscription_id: subId,
      user_id: userId,
      kind: 'renewal',
      amount: 1200,
      currency: 'USD',
      status,
      period_index: 1,
      attempt,
    })
    .execute();
  return id;
}

const payment = (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const refundsOf = (id: string) => db.selectFrom('refunds').selectAll().where('payment_id', '=', id).execute();
const ctx = (provider: PaymentProvider): PaymentContext => ({ provider, logger, dunningRetryMs: [1000, 2000] });

t.test('a second capture for a period already paid is refunded in full, never kept (defect 1)', async (t) => {
  const sub = await activeSubscription();
  const first = await renewalPayment(sub.id, sub.user_id, 0);
  const provider = new FakeProvider();
  t.match(await chargeRenewal(ctx(provider), db, first), 'renewed');
  // A duplicate left by an earlier replica race: it was charged at PayPal too.
  const second = randomUUID();
  await db
    .insertInto('payments')
    .values({
      id: second,
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'renewal',
      amount: 1200,
      currency: 'USD',
      status: 'approved',
      period_index: 1,
      attempt: 1,
      provider_order_id: 'ORD-DUP',
    })
    .execute();
  const capture: CaptureInfo = { id: 'CAP-DUP', status: 'COMPLETED', amount: 1200, currency: 'USD', customId: second };
  const outcome = await db
    .transaction()
    .execute(async (trx) =>
      recordCapture(
        ctx(provider),
        trx,
        await trx.selectFrom('payments').selectAll().where('id', '=', second).executeTakeFirstOrThrow(),
        capture,
        null,
      ),
    );
  t.match(outcome, /refund/);
  const dup = await payment(second);
  t.equal(dup.status, 'cancelled');
  t.equal(dup.failure_reason, 'replaced');
  t.equal(dup.provider_capture_id, 'CAP-DUP', 'the capture is recorded, so the refund can name it');
  const refunds = await refundsOf(second);
  t.same(
    refunds.map((r) => [r.amount, r.currency, r.status]),
    [[1200, 'USD', 'requested']],
    'the whole capture is refunded',
  );
  t.equal((await payment(first)).status, 'completed', 'the first payment stands');
});

t.test('a renewal for a period already paid is not charged (defect 1)', async (t) => {
  const sub = await activeSubscription();
  const provider = new FakeProvider();
  const paid = await renewalPayment(sub.id, sub.user_id, 0);
  await chargeRenewal(ctx(provider), db, paid);
  // a stale charge request for another attempt of the same period (e.g. left before the unique index)
  const stale = randomUUID();
  await db
    .insertInto('payments')
    .values({
      id: stale,
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'renewal',
      amount: 1200,
      currency: 'USD',
      status: 'cancelled',
      period_index: 1,
      attempt: 1,
    })
    .execute();
  await db.updateTable('payments').set({ status: 'created' }).where('id', '=', stale).execute();
  const outcome = await chargeRenewal(ctx(provider), db, stale);
  t.equal(provider.count('chargeVaulted'), 1, 'PayPal was asked once');
  t.match(outcome, /already paid/);
  t.match(await payment(stale), { status: 'cancelled', failure_reason: 'replaced' });
});

t.test('a renewal in flight when the buyer cancels at period end is not charged (defect 7)', async (t) => {
  const sub = await activeSubscription({ cancelAtPeriodEnd: true });
  const provider = new FakeProvider();
  const p = await renewalPayment(sub.id, sub.user_id);
  const outcome = await chargeRenewal(ctx(provider), db, p);
  t.equal(provider.count('chargeVaulted'), 0, 'PayPal was not asked');
  t.match(outcome, /not charged/);
  t.equal((await payment(p)).status, 'cancelled');
});

t.test("a capture in another currency is refunded in the capture's currency (defect 6)", async (t) => {
  const sub = await activeSubscription();
  const p = await renewalPayment(sub.id, sub.user_id, 0, 'approved');
  const capture: CaptureInfo = { id: 'CAP-EUR', status: 'COMPLETED', amount: 1100, currency: 'EUR', customId: p };
  await db
    .transaction()
    .execute(async (trx) =>
      recordCapture(
        ctx(new FakeProvider()),
        trx,
        await trx.selectFrom('payments').selectAll().where('id', '=', p).executeTakeFirstOrThrow(),
        capture,
        null,
      ),
    );
  t.match(await payment(p), { status: 'failed', failure_reason: 'capture_mismatch' });
  const refunds = await refundsOf(p);
  t.same(
    refunds.map((r) => [r.amount, r.currency]),
    [[1100, 'EUR']],
    'what PayPal took, in the currency it took it in',
  );
  const provider = new FakeProvider();
  await sendRefund(ctx(provider), db, refunds[0]!.id);
  t.match(inputsOf(provider, 'refund'), [{ captureId: 'CAP-EUR', amount: 1100, currency: 'EUR' }]);
});

t.test(
  'a renewal captured after the buyer cancelled at period end is refunded, the period not extended (defect 7)',
  async (t) => {
    const sub = await activeSubscription();
    const p = await renewalPayment(sub.id, sub.user_id, 0, 'approved');
    await db.updateTable('subscriptions').set({ cancel_at_period_end: true }).where('id', '=', sub.id).execute();
    const capture: CaptureInfo = { id: `CAP-${p}`, status: 'COMPLETED', amount: 1200, currency: 'USD', customId: p };
    const outcome = await db
      .transaction()
      .execute(async (trx) =>
        recordCapture(
          ctx(new FakeProvider()),
          trx,
          await trx.selectFrom('payments').selectAll().where('id', '=', p).executeTakeFirstOrThrow(),
          capture,
          null,
        ),
      );
    t.match(outcome, /refunded/);
    t.same(
      (await refundsOf(p)).map((r) => r.amount),
      [1200],
    );
    const after = await db.selectFrom('subscriptions').selectAll().where('id', '=', sub.id).executeTakeFirstOrThrow();
    t.equal(after.paid_through?.getTime(), sub.paid_through.getTime(), 'paid_through unchanged');
  },
);

t.test(
  'a renewal stuck waiting for the buyer (payer action required) fails at reconciliation and dunning starts (defect 8)',
  async (t) => {
    const sub = await activeSubscription({ startedAgoMs: 50 * 60_000 });
    const p = await renewalPayment(sub.id, sub.user_id, 0, 'pending');
    const orderId = `ORD-STUCK-${p}`;
    await db
      .updateTable('payments')
      .set({ provider_order_id: orderId, updated_at: new Date(Date.now() - 20 * 60_000) })
      .where('id', '=', p)
      .execute();
    // The scheduler's reconciliation asks for a look-up that may end it (apps/scheduler/test/reconciliation.test.ts).
    const provider = new FakeProvider();
    provider.orderAnswer = () => ({
      orderId,
      status: 'PAYER_ACTION_REQUIRED',
      customId: p,
      capture: null,
      vaultId: null,
    });
    await checkOrder(ctx(provider), db, orderId, { expireUnapproved: true });
    t.match(await payment(p), { status: 'failed', failure_reason: 'declined' });
    const after = await db.selectFrom('subscriptions').selectAll().where('id', '=', sub.id).executeTakeFirstOrThrow();
    t.equal(after.status, 'past_due', 'dunning started');
    t.ok(after.next_retry_at, 'a retry is planned');
  },
);

t.test(
  'a capture PayPal refuses (4xx) fails the payment instead of leaving it approved for ever (defect 8)',
  async (t) => {
    const sub = await activeSubscription();
    const p = await renewalPayment(sub.id, sub.user_id, 0, 'pending');
    await db
      .updateTable('payments')
      .set({ provider_order_id: `ORD-REFUSED-${p}` })
      .where('id', '=', p)
      .execute();
    const provider = new FakeProvider();
    provider.captureAnswer = () =>
      new ProviderRefusedError(422, 'ORDER_NOT_APPROVED', 'PayPal capture-order: 422 ORDER_NOT_APPROVED');
    const r = await db
      .transaction()
      .execute((trx) =>
        onPaymentEvent(ctx(provider), trx, { kind: 'order_approved', orderId: `ORD-REFUSED-${p}`, customId: p }),
      );
    t.equal(r.outcome, CAPTURE_NEEDED, 'the approval is recorded; the capture follows once that has committed');
    t.match(await captureApproved(ctx(provider), db, p), /capture refused/);
    t.match(await payment(p), { status: 'failed', failure_reason: 'provider_error' });
    t.equal(
      (await db.selectFrom('subscriptions').select('status').where('id', '=', sub.id).executeTakeFirstOrThrow()).status,
      'past_due',
    );
  },
);

/** The current period paid by the initial payment, and the next one paid ahead by a renewal. */
async function paidAhead() {
  const sub = await activeSubscription({ startedAgoMs: 55 * 60_000 });
  const renewal = randomUUID();
  const start = new Date(sub.anchor_at.getTime() + HOUR);
  await db
    .insertInto('payments')
    .values({
      id: renewal,
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'renewal',
      amount: 1200,
      currency: 'USD',
      status: 'completed',
      period_index: 1,
      period_start: start,
      period_end: new Date(start.getTime() + HOUR),
      provider_capture_id: `CAP-R-${renewal}`,
    })
    .execute();
  await db
    .updateTable('subscriptions')
    .set({ paid_through: new Date(start.getTime() + HOUR) })
    .where('id', '=', sub.id)
    .execute();
  const initial = await db
    .selectFrom('payments')
    .selectAll()
    .where('subscription_id', '=', sub.id)
    .where('kind', '=', 'initial')
    .executeTakeFirstOrThrow();
  return { sub, initial, renewal, nextStart: start };
}
const subscriptionRow = (id: string) =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

t.test(
  'the current period refunded in full at PayPal: cancelled, and the renewal paid ahead comes back whole (defect 5)',
  async (t) => {
    const { sub, initial, renewal } = await paidAhead();
    await db.transaction().execute((trx) =>
      onPaymentEvent(ctx(new FakeProvider()), trx, {
        kind: 'capture_refunded',
        captureId: initial.provider_capture_id!,
        refundId: `EXT-${initial.id}`,
        customId: null,
        amount: 1200,
        currency: 'USD',
        status: 'COMPLETED',
      }),
    );
    t.equal((await subscriptionRow(sub.id)).status, 'cancelled');
    t.same(
      (await refundsOf(renewal)).map((r) => [r.amount, r.status]),
      [[1200, 'requested']],
      'the paid-ahead renewal is refunded',
    );
  },
);

t.test(
  'a chargeback of the current period: cancelled, and the renewal paid ahead comes back whole (defect 5)',
  async (t) => {
    const { sub, initial, renewal } = await paidAhead();
    await db.transaction().execute((trx) =>
      onPaymentEvent(ctx(new FakeProvider()), trx, {
        kind: 'capture_reversed',
        captureId: initial.provider_capture_id!,
        refundId: `REV-${initial.id}`,
        amount: 1200,
        currency: 'USD',
      }),
    );
    t.equal((await payment(initial.id)).status, 'reversed');
    t.equal((await subscriptionRow(sub.id)).status, 'cancelled');
    t.same(
      (await refundsOf(renewal)).map((r) => r.amount),
      [1200],
      'the paid-ahead renewal is refunded',
    );
  },
);

t.test(
  'the renewal paid ahead refunded or charged back at PayPal: that period is no longer paid (defect 5)',
  async (t) => {
    for (const how of ['refunded', 'reversed'] as const) {
      const { sub, renewal, nextStart } = await paidAhead();
      const captureId = `CAP-R-${renewal}`;
      await db.transaction().execute((trx) =>
        onPaymentEvent(
          ctx(new FakeProvider()),
          trx,
          how === 'refunded'
            ? {
                kind: 'capture_refunded',
                captureId,
                refundId: `EXT-${renewal}`,
                customId: null,
                amount: 1200,
                currency: 'USD',
                status: 'COMPLETED',
              }
            : { kind: 'capture_reversed', captureId, refundId: `REV-${renewal}`, amount: 1200, currency: 'USD' },
        ),
      );
      const after = await subscriptionRow(sub.id);
      t.equal(after.status, 'active', `${how}: the current period stays served`);
      t.equal(
        after.paid_through?.getTime(),
        nextStart.getTime(),
        `${how}: paid through the current period only, not a free one`,
      );
      t.equal(after.cancel_at_period_end, true, `${how}: no silent charge again; the buyer may resume`);
    }
  },
);

t.test('renewal_charges_total counts each renewal by its dunning outcome, once per committed step', async (t) => {
  const metrics = createMetrics('payment-worker');
  const provider = new FakeProvider();
  const handler = chargeRenewalHandler({ ...ctx(provider), metrics });
  const run = (paymentId: string) =>
    handler({ db, logger, envelope: { data: { paymentId } } } as unknown as Parameters<typeof handler>[0]);
  const paid = await activeSubscription();
  const paidPayment = await renewalPayment(paid.id, paid.user_id);
  await run(paidPayment);
  await run(paidPayment); // redelivered: nothing more happens, nothing more counted
  const declined = await activeSubscription();
  provider.chargeAnswer = () => new ProviderRefusedError(422, 'INSTRUMENT_DECLINED', 'declined');
  await run(await renewalPayment(declined.id, declined.user_id));
  const noWallet = await activeSubscription();
  await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', noWallet.id).execute();
  await run(await renewalPayment(noWallet.id, noWallet.user_id));
  const counts = Object.fromEntries(
    (await metrics.renewalCharges.get()).values.map((v) => [String(v.labels['outcome']), v.value]),
  );
  t.same(counts, { paid: 1, declined: 1, no_payment_method: 1 });
  t.equal(renewalOutcome('refused: PAYER_CANNOT_PAY'), 'refused');
  t.equal(renewalOutcome('subscription cancelled: not charged'), 'not_charged');
  t.equal(renewalOutcome('refunded: subscription ended'), 'refunded');
  t.equal(renewalOutcome('capture pending'), 'pending');
});

t.test(
  'a plan change charged through the vault: applied when it completes, nothing when declined or when the subscription ended',
  async (t) => {
    await importCatalog(db, [
      {
        id: 'hourly-plus',
        name: 'Hourly+',
        description: '',
        amount: 3600,
        currency: 'USD',
        period: 'PT1H',
        role: 'hourly-plus',
        active: true,
      },
    ]);
    const provider = new FakeProvider();
    const handler = chargePlanChangeHandler(ctx(provider));
    const run = (paymentId: string) =>
      handler({ db, logger, envelope: { data: { paymentId } } } as unknown as Parameters<typeof handler>[0]);
    const ask = (subId: string) =>
      db.transaction().execute(async (trx) => {
        const s = await trx
          .selectFrom('subscriptions')
          .selectAll()
          .where('id', '=', subId)
          .forUpdate()
          .executeTakeFirstOrThrow();
        return requestPlanChange(trx, s, 'hourly-plus', new Date());
      });
    const changeOf = (subId: string) =>
      db.selectFrom('plan_changes').selectAll().where('subscription_id', '=', subId).executeTakeFirstOrThrow();
    const subOf = (id: string) =>
      db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    // Paid: plan, price and role switch; the grants follow.
    const paid = await activeSubscription();
    const r = await ask(paid.id);
    t.equal(r.kind, 'charging');
    const paymentId = r.kind === 'charging' ? r.paymentId : '';
    await run(paymentId);
    await run(paymentId); // redelivered: no second charge, no second switch
    t.equal(provider.count('chargeVaulted'), 1);
    t.match(await payment(paymentId), { kind: 'upgrade', status: 'completed' });
    t.match(await subOf(paid.id), { plan_id: 'hourly-plus', amount: 3600, role: 'hourly-plus' });
    t.equal((await changeOf(paid.id)).status, 'applied');
    const grants = await db
      .selectFrom('role_grants')
      .selectAll()
      .where('subscription_id', '=', paid.id)
      .orderBy('started_at')
      .execute();
    t.same(
      grants.map((g) => [g.role, g.ended_at === null]),
      [
        ['hourly', false],
        ['hourly-plus', true],
      ],
      'the old grant ended, the new one live',
    );

    // Declined: the change fails, the subscription stays as it was.
    const declined = await activeSubscription();
    const d = await ask(declined.id);
    provider.chargeAnswer = () => new ProviderRefusedError(422, 'INSTRUMENT_DECLINED', 'declined');
    await run(d.kind === 'charging' ? d.paymentId : '');
    t.match(await changeOf(declined.id), { status: 'failed', failure_reason: 'declined' });
    t.match(await subOf(declined.id), { plan_id: 'hourly', role: 'hourly' });

    // Ended before the charge: not charged.
    const ended = await activeSubscription();
    const e = await ask(ended.id);
    await db
      .updateTable('subscriptions')
      .set({ status: 'cancelled', cancelled_at: new Date() })
      .where('id', '=', ended.id)
      .execute();
    const before = provider.count('chargeVaulted');
    await run(e.kind === 'charging' ? e.paymentId : '');
    t.equal(provider.count('chargeVaulted'), before, 'PayPal was not asked');
    t.equal((await changeOf(ended.id)).status, 'failed');

    // Ended while the capture was on its way: the money goes back whole.
    const late = await activeSubscription();
    const l = await ask(late.id);
    const lateId = l.kind === 'charging' ? l.paymentId : '';
    await db
      .updateTable('subscriptions')
      .set({ status: 'cancelled', cancelled_at: new Date() })
      .where('id', '=', late.id)
      .execute();
    const amount = (await payment(lateId)).amount;
    const outcome = await db.transaction().execute(async (trx) => {
      const p = await trx
        .selectFrom('payments')
        .selectAll()
        .where('id', '=', lateId)
        .forUpdate()
        .executeTakeFirstOrThrow();
      await pays.transition(trx, p, { type: 'order_created' });
      return recordOrder(ctx(provider), trx, p, {
        orderId: 'ORD-LATE',
        status: 'COMPLETED',
        customId: lateId,
        vaultId: null,
        capture: { id: 'CAP-LATE', status: 'COMPLETED', amount, currency: 'USD', customId: lateId },
      });
    });
    t.equal(outcome, 'refunded: plan change no longer applies');
    t.same(
      (await refundsOf(lateId)).map((x) => x.amount),
      [amount],
    );
    t.equal((await changeOf(late.id)).status, 'failed');
  },
);

t.test(
  'a renewal only the buyer can help: past_due, not retried, the buyer told once; a new wallet replaces it and retries at once',
  async (t) => {
    const provider = new FakeProvider();
    const sub = await activeSubscription();
    provider.chargeAnswer = () =>
      new ProviderRefusedError(422, 'INVALID_PAYMENT_SOURCE', 'The vault id is unknown or deleted.');
    await chargeRenewal(ctx(provider), db, await renewalPayment(sub.id, sub.user_id, 0));
    const s1 = await db.selectFrom('subscriptions').selectAll().where('id', '=', sub.id).executeTakeFirstOrThrow();
    t.match(s1, { status: 'past_due', payment_method_required: 'payment_token_deleted', next_retry_at: null });
    t.ok(s1.payment_method_deadline, 'a deadline: the last retry time');
    // A second failure (another attempt) tells nobody again.
    await chargeRenewal(ctx(provider), db, await renewalPayment(sub.id, sub.user_id, 1));
    const told = await db
      .selectFrom('outbox')
      .select('envelope')
      .where('type', '=', 'subscription.payment_method_required')
      .execute();
    t.equal(
      told.filter((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === sub.id).length,
      1,
      'told once',
    );
    // The buyer saved a new wallet at PayPal.
    await db
      .insertInto('payment_method_requests')
      .values({
        id: randomUUID(),
        subscription_id: sub.id,
        user_id: sub.user_id,
        setup_token_id: 'SETUP-1',
        status: 'pending',
      })
      .execute();
    provider.createPaymentToken = async () => ({ paymentTokenId: 'NEWVAULT', customerId: 'C-1' });
    t.equal(await replacePaymentMethod(ctx(provider), db, 'SETUP-1'), 'replaced; retrying now');
    t.equal(await replacePaymentMethod(ctx(provider), db, 'SETUP-1'), 'no-op', 'once');
    t.equal(await replacePaymentMethod(ctx(provider), db, 'SETUP-UNKNOWN'), 'no-op');
    const handler = paymentMethodApprovedHandler(ctx(provider));
    await handler({ db, logger, envelope: { data: { setupTokenId: 'SETUP-1' } } } as unknown as Parameters<
      typeof handler
    >[0]);
    const s2 = await db.selectFrom('subscriptions').selectAll().where('id', '=', sub.id).executeTakeFirstOrThrow();
    t.match(s2, { vault_id: 'NEWVAULT', payment_method_required: null, payment_method_deadline: null });
    t.ok(s2.next_retry_at && s2.next_retry_at.getTime() <= Date.now(), 'retried at once');
    // Refused by PayPal: the request fails, nothing changes.
    const other = await activeSubscription();
    await db
      .insertInto('payment_method_requests')
      .values({
        id: randomUUID(),
        subscription_id: other.id,
        user_id: other.user_id,
        setup_token_id: 'SETUP-2',
        status: 'pending',
      })
      .execute();
    provider.createPaymentToken = async () => {
      throw new ProviderRefusedError(422, 'UNPROCESSABLE_ENTITY', 'not approved');
    };
    // Approved at PayPal, yet refused: final.
    provider.getSetupToken = async (id) => ({ setupTokenId: id, status: 'APPROVED', approvalUrl: null });
    t.equal(await replacePaymentMethod(ctx(provider), db, 'SETUP-2'), 'refused: UNPROCESSABLE_ENTITY');
    // No wallet at all: the same, with its own reason.
    const bare = await activeSubscription();
    await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', bare.id).execute();
    await chargeRenewal(ctx(provider), db, await renewalPayment(bare.id, bare.user_id, 0));
    t.match(await db.selectFrom('subscriptions').selectAll().where('id', '=', bare.id).executeTakeFirstOrThrow(), {
      status: 'past_due',
      payment_method_required: 'no_payment_method',
    });
    // Saved for a subscription that has since ended: kept for nothing.
    await db.updateTable('subscriptions').set({ status: 'expired' }).where('id', '=', bare.id).execute();
    await db
      .insertInto('payment_method_requests')
      .values({
        id: randomUUID(),
        subscription_id: bare.id,
        user_id: bare.user_id,
        setup_token_id: 'SETUP-3',
        status: 'pending',
      })
      .execute();
    provider.createPaymentToken = async () => ({ paymentTokenId: 'LATE', customerId: null });
    t.equal(await replacePaymentMethod(ctx(provider), db, 'SETUP-3'), 'subscription expired: kept for nothing');
  },
);

/** A pending checkout waiting for the buyer's wallet (docs/api.md, free trials): a trial, or a first period made free. */
async function pendingVaultCheckout(opts: { trial?: string; freePayment?: boolean; userId?: string } = {}) {
  const sub = {
    id: randomUUID(),
    user_id: opts.userId ?? `u-${randomUUID()}`,
    plan_id: 'hourly',
    plan_name: 'Hourly',
    role: 'hourly',
    amount: 1200,
    currency: 'USD',
    period: 'PT1H',
    status: 'pending' as const,
    trial_period: opts.trial ?? null,
  };
  await db.insertInto('subscriptions').values(sub).execute();
  const paymentId = randomUUID();
  if (opts.freePayment)
    await db
      .insertInto('payments')
      .values({
        id: paymentId,
        subscription_id: sub.id,
        user_id: sub.user_id,
        kind: 'initial',
        amount: 0,
        currency: 'USD',
        status: 'created',
        period_index: 0,
        attempt: 0,
      })
      .execute();
  const setupTokenId = `SETUP-${randomUUID().slice(0, 8)}`;
  await db
    .insertInto('payment_method_requests')
    .values({
      id: randomUUID(),
      subscription_id: sub.id,
      user_id: sub.user_id,
      setup_token_id: setupTokenId,
      status: 'pending',
    })
    .execute();
  return { sub, paymentId, setupTokenId };
}
const subscription = (id: string) =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const outboxOf = async (type: string, subscriptionId: string) =>
  (await db.selectFrom('outbox').select('envelope').where('type', '=', type).execute()).filter(
    (r) => (r.envelope as { data: { subscriptionId?: string } }).data.subscriptionId === subscriptionId,
  );

t.test('a trial checkout: the saved wallet starts the trial, once; one trial per user and role', async (t) => {
  const provider = new FakeProvider();
  provider.createPaymentToken = async () => ({ paymentTokenId: 'TRIAL-VAULT', customerId: null });
  const { sub, setupTokenId } = await pendingVaultCheckout({ trial: 'P14D' });
  const before = Date.now();
  t.equal(await replacePaymentMethod(ctx(provider), db, setupTokenId), 'trial started');
  const s = await subscription(sub.id);
  t.match(s, { status: 'trialing', vault_id: 'TRIAL-VAULT' });
  t.ok(s.trial_start!.getTime() >= before);
  t.equal(s.trial_end!.getTime() - s.trial_start!.getTime(), 14 * 86_400_000);
  t.equal(s.trial_notice_at!.getTime(), s.trial_end!.getTime() - 3 * 86_400_000, '3 days before the end');
  t.same([s.anchor_at, s.paid_through], [s.trial_end, s.trial_end], 'the first period starts at the end');
  t.equal((await outboxOf('subscription.trial_started', sub.id)).length, 1);
  t.equal(
    (await db.selectFrom('role_grants').select('id').where('subscription_id', '=', sub.id).execute()).length,
    1,
    'the role granted',
  );
  t.equal(await replacePaymentMethod(ctx(provider), db, setupTokenId), 'no-op', 'once');
  t.equal(
    await db.transaction().execute((trx) => startTrial(ctx(provider), trx, s, 'X')),
    'no-op',
    'not pending any more',
  );
  // The same user and role again (a second checkout raced the first): this one ends, no second trial.
  const again = await pendingVaultCheckout({ trial: 'P14D', userId: sub.user_id });
  t.equal(
    await replacePaymentMethod(ctx(provider), db, again.setupTokenId),
    'refused: a trial for this role was had already',
  );
  t.match(await subscription(again.sub.id), { status: 'cancelled', trial_start: null });
  // PayPal refuses to make the payment token: the trial checkout ends.
  const refused = await pendingVaultCheckout({ trial: 'P14D' });
  provider.createPaymentToken = async () => {
    throw new ProviderRefusedError(422, 'UNPROCESSABLE_ENTITY', 'not approved');
  };
  // Refused although PayPal shows it approved: final (an unknown token too).
  provider.getSetupToken = async () => {
    throw new ProviderRefusedError(404, 'RESOURCE_NOT_FOUND', 'no such setup token');
  };
  t.equal(await replacePaymentMethod(ctx(provider), db, refused.setupTokenId), 'refused: UNPROCESSABLE_ENTITY');
  t.match(await subscription(refused.sub.id), { status: 'cancelled' });
});

t.test('a trial replaces a past_due subscription for the same role', async (t) => {
  const provider = new FakeProvider();
  provider.createPaymentToken = async () => ({ paymentTokenId: 'TRIAL-VAULT-2', customerId: null });
  const old = await activeSubscription();
  await db.updateTable('subscriptions').set({ status: 'past_due' }).where('id', '=', old.id).execute();
  const { sub, setupTokenId } = await pendingVaultCheckout({ trial: 'P3D', userId: old.user_id });
  t.equal(await replacePaymentMethod(ctx(provider), db, setupTokenId), 'trial started');
  const s = await subscription(sub.id);
  t.equal(
    s.trial_notice_at!.getTime(),
    s.trial_start!.getTime() + 1.5 * 86_400_000,
    'half a trial shorter than 6 days',
  );
  t.match(await subscription(old.id), { status: 'cancelled' });
});

t.test('a first period a coupon made free: paid for 0 without a charge once the wallet is saved', async (t) => {
  const provider = new FakeProvider();
  provider.createPaymentToken = async () => ({ paymentTokenId: 'FREE-VAULT', customerId: null });
  const { sub, paymentId, setupTokenId } = await pendingVaultCheckout({ freePayment: true });
  t.equal(await replacePaymentMethod(ctx(provider), db, setupTokenId), 'activated (free period, not charged)');
  t.match(await payment(paymentId), { status: 'completed', amount: 0, provider_order_id: null });
  t.match(await subscription(sub.id), { status: 'active', vault_id: 'FREE-VAULT' });
  t.equal(provider.count('chargeVaulted') + provider.count('capture'), 0, 'nothing sent to PayPal');
  t.equal(
    (await db.selectFrom('receipts').selectAll().where('payment_id', '=', paymentId).executeTakeFirstOrThrow()).amount,
    0,
    'its receipt',
  );
  const c = ctx(provider);
  await db.transaction().execute(async (trx) => {
    t.equal(await paidWithoutCharge(c, trx, await payment(paymentId), null), 'no-op', 'once');
    const paid = await activeSubscription();
    const charged = await trx
      .selectFrom('payments')
      .selectAll()
      .where('subscription_id', '=', paid.id)
      .executeTakeFirstOrThrow();
    await t.rejects(paidWithoutCharge(c, trx, charged, null), /cannot be paid without a charge/);
  });
  // Nothing waits for a wallet saved for a pending checkout that has no free payment.
  const stray = await pendingVaultCheckout();
  t.equal(await replacePaymentMethod(ctx(provider), db, stray.setupTokenId), 'no-op: nothing waits for this wallet');
});

t.test('a renewal a coupon made free: paid for 0 without PayPal, even with no wallet', async (t) => {
  const provider = new FakeProvider();
  const sub = await activeSubscription({ startedAgoMs: 50 * 60_000 });
  await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', sub.id).execute();
  const id = await renewalPayment(sub.id, sub.user_id);
  await db.updateTable('payments').set({ amount: 0 }).where('id', '=', id).execute();
  t.equal(await chargeRenewal(ctx(provider), db, id), 'renewed (free period, not charged)');
  t.equal(renewalOutcome('renewed (free period, not charged)'), 'paid');
  t.match(await payment(id), { status: 'completed', amount: 0, provider_order_id: null });
  t.equal(provider.count('chargeVaulted'), 0);
  t.equal((await subscription(sub.id)).paid_through!.getTime(), sub.paid_through.getTime() + HOUR);
});

t.test('a trial whose first charge is declined: past_due with dunning', async (t) => {
  const provider = new FakeProvider();
  provider.createPaymentToken = async () => ({ paymentTokenId: 'TRIAL-VAULT-3', customerId: null });
  const { sub, setupTokenId } = await pendingVaultCheckout({ trial: 'PT1S' });
  await replacePaymentMethod(ctx(provider), db, setupTokenId);
  const id = randomUUID();
  await db
    .insertInto('payments')
    .values({
      id,
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'renewal',
      amount: 1200,
      currency: 'USD',
      status: 'created',
      period_index: 0,
      attempt: 0,
    })
    .execute();
  provider.chargeAnswer = () => new ProviderRefusedError(422, 'INSTRUMENT_DECLINED', 'declined');
  t.equal(await chargeRenewal(ctx(provider), db, id), 'declined');
  const s = await subscription(sub.id);
  t.match(s, { status: 'past_due', dunning_attempts: 1 });
  t.ok(s.next_retry_at, 'retried later');
  t.equal((await outboxOf('subscription.renewal_failed', sub.id)).length, 1);
});

t.test(
  'reconciliation of a wallet nobody came back with: saved when approved, ended when unapproved past the TTL',
  async (t) => {
    const provider = new FakeProvider();
    provider.createPaymentToken = async () => ({ paymentTokenId: 'LOST-VAULT', customerId: null });
    const status = new Map<string, string>();
    provider.getSetupToken = async (id) => {
      const s = status.get(id);
      if (!s) throw new ProviderRefusedError(404, 'RESOURCE_NOT_FOUND', 'no such token');
      return { setupTokenId: id, status: s, approvalUrl: null };
    };
    const handler = paymentMethodApprovedHandler(ctx(provider));
    const run = (data: Record<string, unknown>) =>
      handler({ db, logger, envelope: { data } } as unknown as Parameters<typeof handler>[0]);
    const approved = await pendingVaultCheckout({ trial: 'P14D' });
    status.set(approved.setupTokenId, 'APPROVED');
    const waiting = await pendingVaultCheckout({ trial: 'P14D' });
    status.set(waiting.setupTokenId, 'PAYER_ACTION_REQUIRED');
    const gone = await pendingVaultCheckout({ freePayment: true });
    await run({ setupTokenId: approved.setupTokenId, source: 'reconciliation', expireUnapproved: false });
    t.match(await subscription(approved.sub.id), { status: 'trialing', vault_id: 'LOST-VAULT' });
    await run({ setupTokenId: waiting.setupTokenId, source: 'reconciliation', expireUnapproved: false });
    t.match(await subscription(waiting.sub.id), { status: 'pending' }, 'still waiting for the buyer');
    await run({ setupTokenId: waiting.setupTokenId, source: 'reconciliation', expireUnapproved: true });
    t.match(await subscription(waiting.sub.id), { status: 'cancelled' }, 'past the TTL: ended');
    await run({ setupTokenId: gone.setupTokenId, source: 'reconciliation', expireUnapproved: true });
    t.match(await subscription(gone.sub.id), { status: 'cancelled' }, 'unknown at PayPal: ended');
    await run({ setupTokenId: gone.setupTokenId, source: 'reconciliation', expireUnapproved: true });
    t.equal(
      (
        await db
          .selectFrom('payment_method_requests')
          .select('status')
          .where('setup_token_id', '=', gone.setupTokenId)
          .executeTakeFirstOrThrow()
      ).status,
      'cancelled',
      'a second look changes nothing',
    );
  },
);

t.test('one trial per user and role holds in the database too, whatever the code above it does', async (t) => {
  const provider = new FakeProvider();
  provider.createPaymentToken = async () => ({ paymentTokenId: 'ONE-TRIAL', customerId: null });
  const first = await pendingVaultCheckout({ trial: 'P14D' });
  t.equal(await replacePaymentMethod(ctx(provider), db, first.setupTokenId), 'trial started');
  const second = await pendingVaultCheckout({ trial: 'P14D', userId: first.sub.user_id });
  const now = new Date();
  await t.rejects(
    db
      .updateTable('subscriptions')
      .set({ trial_start: now, trial_end: new Date(now.getTime() + 1000) })
      .where('id', '=', second.sub.id)
      .execute(),
    /subscriptions_one_trial_per_role/,
    'a second trial start for the same user and role is refused by the unique index',
  );
});

t.test(
  'a vault return naming a setup token the buyer has not approved leaves the checkout waiting for its buyer',
  async (t) => {
    const provider = new FakeProvider();
    const { sub, setupTokenId } = await pendingVaultCheckout({ trial: 'P14D' });
    // PayPal refuses to make a payment token from an unapproved setup token, and says it still waits.
    provider.createPaymentToken = async () => {
      throw new ProviderRefusedError(
        422,
        'UNPROCESSABLE_ENTITY',
        'The setup token has not been approved by the payer.',
      );
    };
    provider.getSetupToken = async (id) => ({ setupTokenId: id, status: 'PAYER_ACTION_REQUIRED', approvalUrl: null });
    t.equal(
      await replacePaymentMethod(ctx(provider), db, setupTokenId),
      'setup token PAYER_ACTION_REQUIRED: still waiting for the buyer',
    );
    t.match(await subscription(sub.id), { status: 'pending' }, 'the trial checkout is not cancelled');
    const request = await db
      .selectFrom('payment_method_requests')
      .selectAll()
      .where('setup_token_id', '=', setupTokenId)
      .executeTakeFirstOrThrow();
    t.equal(request.status, 'pending');
    // The buyer approves and comes back: the trial starts.
    provider.createPaymentToken = async () => ({ paymentTokenId: 'VAULT-LATER', customerId: null });
    t.match(await replacePaymentMethod(ctx(provider), db, setupTokenId), /trial/);
    t.match(await subscription(sub.id), { status: 'trialing', vault_id: 'VAULT-LATER' });
  },
);
