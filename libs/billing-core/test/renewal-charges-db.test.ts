import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  completeRenewals,
  fits,
  lockCharges,
  payments,
  ReceiptBatch,
  recordRenewalPaid,
  subscriptions,
  type CapturedRenewal,
} from '../src/index.js';

// Renewal charges recorded set-based (docs/messages.md, renewal charges in windows), against a
// real, migrated database: the same rows, messages and receipts as the one-at-a-time path.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  { id: 'm', name: 'Monthly', description: '', amount: 900, currency: 'EUR', period: 'P1M', role: 'r', active: true },
]);

const anchor = new Date('2026-11-01T00:00:00Z');
const paidThrough = new Date('2026-12-01T00:00:00Z');
type Shape = { status?: 'active' | 'past_due' | 'trialing'; trial?: boolean; cancelAtPeriodEnd?: boolean };

/** A subscription at its first renewal (period 1; period 0 for a trial's first charge) and its `created` payment. */
async function renewalOf(shape: Shape = {}, amount = 900) {
  const subId = randomUUID();
  const paymentId = randomUUID();
  const userId = `u-${subId.slice(0, 8)}`;
  await db
    .insertInto('subscriptions')
    .values({
      id: subId,
      user_id: userId,
      plan_id: 'm',
      plan_name: 'Monthly',
      role: 'r',
      amount: 900,
      currency: 'EUR',
      period: 'P1M',
      status: shape.status ?? 'active',
      anchor_at: anchor,
      paid_through: paidThrough,
      vault_id: `vault-${subId}`,
      cancel_at_period_end: shape.cancelAtPeriodEnd ?? false,
      ...(shape.trial ? { trial_start: new Date('2026-10-18T00:00:00Z'), trial_end: anchor } : {}),
      ...(shape.status === 'past_due'
        ? { dunning_started_at: paidThrough, dunning_attempts: 2, next_retry_at: new Date('2026-12-04T00:00:00Z') }
        : {}),
    })
    .execute();
  await payments.create(db as never, {
    id: paymentId,
    subscription_id: subId,
    user_id: userId,
    kind: 'renewal',
    amount,
    currency: 'EUR',
    period_index: shape.trial ? 0 : 1,
    attempt: 0,
  });
  return { subId, paymentId };
}

const captured = (l: Awaited<ReturnType<typeof lockCharges>>, paymentId: string): CapturedRenewal => ({
  ...l.get(paymentId)!,
  orderId: `order-${paymentId}`,
  captureId: `capture-${paymentId}`,
});

/** The one-at-a-time path for the same answer (what the payment-worker did before windows). */
async function oneAtATime(paymentId: string) {
  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: paymentId }))!;
    await payments.record(trx, p, { provider_order_id: `order-${paymentId}` });
    await payments.transition(trx, p, { type: 'order_created' });
    await payments.transition(trx, p, { type: 'capture_completed' }, { provider_capture_id: `capture-${paymentId}` });
    const sub = (await subscriptions.lock(trx, p.subscription_id))!;
    await recordRenewalPaid(trx, sub, p);
  });
}

const stateOf = async (subId: string, paymentId: string) => {
  const s = await db.selectFrom('subscriptions').selectAll().where('id', '=', subId).executeTakeFirstOrThrow();
  const p = await db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirstOrThrow();
  return {
    sub: {
      status: s.status,
      paid_through: s.paid_through?.toISOString(),
      dunning_attempts: s.dunning_attempts,
      dunning_started_at: s.dunning_started_at,
      next_retry_at: s.next_retry_at,
      version: s.version,
    },
    payment: {
      status: p.status,
      failure_reason: p.failure_reason,
      period_start: p.period_start?.toISOString(),
      period_end: p.period_end?.toISOString(),
      provider_order_id: p.provider_order_id?.replace(paymentId, ''),
      provider_capture_id: p.provider_capture_id?.replace(paymentId, ''),
    },
  };
};
const messagesOf = async (subId: string) =>
  (await db.selectFrom('outbox').select(['type', 'envelope']).where('type', 'like', 'subscription.%').execute())
    .filter((m) => (m.envelope as { data: { subscriptionId?: string } }).data.subscriptionId === subId)
    .map((m) => {
      const { subscriptionId: _s, userId: _u, ...data } = (m.envelope as { data: Record<string, unknown> }).data;
      return { type: m.type, data };
    });

t.test('set-based and one at a time write the same rows and messages, for each live status', async (t) => {
  const shapes: Shape[] = [{ status: 'active' }, { status: 'past_due' }, { status: 'trialing', trial: true }];
  const set = await Promise.all(shapes.map((s) => renewalOf(s)));
  const single = await Promise.all(shapes.map((s) => renewalOf(s)));
  const receipts = new ReceiptBatch();
  await db.transaction().execute(async (trx) => {
    const locked = await lockCharges(
      trx,
      set.map((r) => r.paymentId),
    );
    t.equal(locked.size, 3);
    await completeRenewals(
      trx,
      set.map((r) => captured(locked, r.paymentId)),
      receipts,
    );
    await receipts.issue(trx);
  });
  for (const r of single) await oneAtATime(r.paymentId);
  for (const [i, shape] of shapes.entries()) {
    const a = await stateOf(set[i]!.subId, set[i]!.paymentId);
    const b = await stateOf(single[i]!.subId, single[i]!.paymentId);
    t.same(a, b, `${shape.status}: the same rows`);
    t.equal(a.payment.status, 'completed');
    t.equal(a.sub.status, 'active', `${shape.status} is active once paid`);
    t.equal(a.sub.dunning_attempts, 0);
    t.same(await messagesOf(set[i]!.subId), await messagesOf(single[i]!.subId), `${shape.status}: the same message`);
    t.equal(
      (await messagesOf(set[i]!.subId))[0]?.type,
      shape.trial ? 'subscription.activated' : 'subscription.renewed',
    );
  }
  const issued = await db
    .selectFrom('receipts')
    .select(['payment_id', 'description', 'amount'])
    .where(
      'payment_id',
      'in',
      set.map((r) => r.paymentId),
    )
    .execute();
  t.equal(issued.length, 3, 'a receipt each');
  t.match(issued[0]!.description, /^Monthly \(m\): renewal, 2026-1\d-\d\d to 20\d\d-\d\d-\d\d$/);
});

t.test('only the common case is taken set-based', async (t) => {
  const plain = await renewalOf();
  const coupon = await renewalOf({}, 450);
  const ending = await renewalOf({ cancelAtPeriodEnd: true });
  const taken = await renewalOf();
  // Another payment of ours already holds the period of `taken` (completed: the one open renewal per period stays unique).
  await db
    .insertInto('payments')
    .values({
      id: randomUUID(),
      subscription_id: taken.subId,
      user_id: `u-${taken.subId.slice(0, 8)}`,
      kind: 'renewal',
      amount: 900,
      currency: 'EUR',
      period_index: 1,
      attempt: 1,
      status: 'completed',
    })
    .execute();
  const cancelled = await renewalOf();
  await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', cancelled.subId).execute();
  const done = await renewalOf();
  await db.updateTable('payments').set({ status: 'failed' }).where('id', '=', done.paymentId).execute();
  const all = [plain, coupon, ending, taken, cancelled, done];
  await db.transaction().execute(async (trx) => {
    const locked = await lockCharges(trx, [...all.map((r) => r.paymentId), randomUUID()]);
    t.equal(locked.size, 6, 'an id of no payment is absent');
    t.equal(locked.get(taken.paymentId)!.periodTaken, true);
    t.equal(locked.get(plain.paymentId)!.periodTaken, false);
    t.same(
      all.map((r) => fits(captured(locked, r.paymentId))),
      [true, false, false, false, false, false],
      'a coupon, an end at period end, a period held, an ended subscription, a payment no longer created',
    );
    await t.rejects(
      completeRenewals(trx, [captured(locked, coupon.paymentId)], new ReceiptBatch()),
      /cannot be completed set-based/,
      'a case it does not take is refused, not written',
    );
  });
  const untouched = await db
    .selectFrom('payments')
    .select('status')
    .where('id', '=', coupon.paymentId)
    .executeTakeFirstOrThrow();
  t.equal(untouched.status, 'created');
});

t.test('the edges: nothing asked, nothing found, and each case fits refuses', async (t) => {
  await db.transaction().execute(async (trx) => {
    t.equal((await lockCharges(trx, [])).size, 0, 'no ids: no statement, nothing');
    t.equal((await lockCharges(trx, [randomUUID()])).size, 0, 'an id of no payment: nothing');
    await completeRenewals(trx, [], new ReceiptBatch());
    const r = await renewalOf();
    const l = captured(await lockCharges(trx, [r.paymentId]), r.paymentId);
    t.ok(fits(l), 'the common case');
    const refused: [string, CapturedRenewal][] = [
      ['a payment already pending at PayPal', { ...l, p: { ...l.p, status: 'pending' } }],
      ['a payment approved', { ...l, p: { ...l.p, status: 'approved' } }],
      ['a plan change', { ...l, p: { ...l.p, kind: 'upgrade' } }],
      ['a capture already recorded', { ...l, p: { ...l.p, provider_capture_id: 'CAP-OTHER' } }],
      ['another order recorded', { ...l, p: { ...l.p, provider_order_id: 'ORD-OTHER' } }],
      ['a free period', { ...l, p: { ...l.p, amount: 0 }, sub: { ...l.sub, amount: 0 } }],
      ['a subscription never anchored', { ...l, sub: { ...l.sub, anchor_at: null } }],
      ['an expired subscription', { ...l, sub: { ...l.sub, status: 'expired' } }],
    ];
    for (const [what, c] of refused) t.notOk(fits(c), what);
    t.ok(fits({ ...l, p: { ...l.p, provider_order_id: l.orderId } }), 'the same order recorded before still fits');
  });
  t.throws(
    () => payments.updateIfStill(db, randomUUID(), 'completed', { type: 'order_created' }),
    /does not take order_created/,
    'a compare-and-set the machine refuses is not built',
  );
});
