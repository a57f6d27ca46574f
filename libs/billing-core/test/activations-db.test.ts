import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  activateSubscription,
  activationFits,
  completeActivations,
  lockActivations,
  payments,
  ReceiptBatch,
  subscriptions,
  type CapturedActivation,
} from '../src/index.js';

// First payments completed set-based (docs/messages.md, captures in windows), against a real,
// migrated database: the rows, grants, messages and receipts each activation writes.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  { id: 'm', name: 'Monthly', description: '', amount: 900, currency: 'EUR', period: 'P1M', role: 'r', active: true },
]);

/** A checkout the buyer approved: a pending subscription and its approved first payment. */
async function approved(userId = `u-${randomUUID().slice(0, 8)}`, amount = 900) {
  const subId = randomUUID();
  const paymentId = randomUUID();
  await db.transaction().execute(async (trx) => {
    await subscriptions.create(trx, {
      id: subId,
      user_id: userId,
      plan_id: 'm',
      plan_name: 'Monthly',
      role: 'r',
      amount: 900,
      currency: 'EUR',
      period: 'P1M',
      approval_url: `https://paypal.test/approve/${subId}`,
    });
    await payments.create(trx, {
      id: paymentId,
      subscription_id: subId,
      user_id: userId,
      kind: 'initial',
      amount,
      currency: 'EUR',
      period_index: 0,
    });
    const p = (await payments.lock(trx, { id: paymentId }))!;
    await payments.transition(trx, p, { type: 'order_created' }, { provider_order_id: `order-${paymentId}` });
    await payments.transition(trx, p, { type: 'approved' });
  });
  return { userId, subId, paymentId };
}

const captured = (l: Awaited<ReturnType<typeof lockActivations>>, paymentId: string): CapturedActivation => ({
  ...l.get(paymentId)!,
  capture: { id: `capture-${paymentId}`, status: 'COMPLETED', amount: 900, currency: 'EUR', customId: paymentId },
  orderId: `order-${paymentId}`,
});

const outboxOf = async (type: string, match: (d: Record<string, unknown>) => boolean) =>
  (await db.selectFrom('outbox').select('envelope').where('type', '=', type).execute())
    .map((r) => (r.envelope as { data: Record<string, unknown> }).data)
    .filter(match);

t.test('first payments completed set-based: payments, subscriptions, grants, messages and receipts', async (t) => {
  const buyers = [await approved(), await approved(), await approved()];
  // One subscription already holds a live grant (a step run twice): it is not granted again.
  await db
    .insertInto('role_grants')
    .values({
      id: randomUUID(),
      user_id: buyers[2]!.userId,
      role: 'r',
      source: 'subscription',
      subscription_id: buyers[2]!.subId,
      reason: 'subscription activated',
      held_before: false,
    })
    .execute();
  const before = await db
    .selectFrom('subscriptions')
    .select(['id', 'version'])
    .where(
      'id',
      'in',
      buyers.map((b) => b.subId),
    )
    .execute();
  const receipts = new ReceiptBatch();
  const startedAt = Date.now();
  await db.transaction().execute(async (trx) => {
    const locked = await lockActivations(
      trx,
      buyers.map((b) => b.paymentId),
    );
    t.same(
      buyers.map((b) => locked.get(b.paymentId)!.liveGrant),
      [false, false, true],
      'the live grant is seen',
    );
    t.same(
      buyers.map((b) => locked.get(b.paymentId)!.pastDueSibling),
      [false, false, false],
    );
    const items = buyers.map((b) => captured(locked, b.paymentId));
    t.ok(items.every(activationFits), 'the common case');
    await completeActivations(trx, items, receipts, 'https://billing.test');
    t.equal(items[0]!.sub.status, 'active', 'the rows passed in are brought up to date');
    t.equal(items[0]!.p.status, 'completed');
    await receipts.issue(trx);
  });
  for (const b of buyers) {
    const p = await db.selectFrom('payments').selectAll().where('id', '=', b.paymentId).executeTakeFirstOrThrow();
    const s = await db.selectFrom('subscriptions').selectAll().where('id', '=', b.subId).executeTakeFirstOrThrow();
    t.match(p, { status: 'completed', provider_capture_id: `capture-${b.paymentId}`, failure_reason: null });
    t.equal(p.provider_order_id, `order-${b.paymentId}`, 'the order kept');
    t.equal(s.status, 'active');
    t.equal(s.approval_url, null, 'the approval link cleared');
    t.ok(s.anchor_at && s.anchor_at.getTime() >= startedAt - 1000, 'anchored now');
    t.equal(p.period_start!.getTime(), s.anchor_at!.getTime(), 'period 0 starts at the anchor');
    t.equal(s.paid_through!.getTime(), p.period_end!.getTime(), 'paid through the first period');
    t.equal(p.period_end!.getUTCMonth(), (p.period_start!.getUTCMonth() + 1) % 12, 'a month');
    t.equal(s.version, before.find((r) => r.id === b.subId)!.version + 1, 'a new version');
    const grants = await db.selectFrom('role_grants').selectAll().where('subscription_id', '=', b.subId).execute();
    t.equal(grants.length, 1, 'one live grant');
    t.match(grants[0], { role: 'r', source: 'subscription', ended_at: null, held_before: false });
    t.equal(
      (await outboxOf('role.change.requested', (d) => d['userId'] === b.userId)).length,
      1,
      'the role asked once',
    );
    const [activated] = await outboxOf('subscription.activated', (d) => d['subscriptionId'] === b.subId);
    t.same(activated, {
      userId: b.userId,
      subscriptionId: b.subId,
      planId: 'm',
      planName: 'Monthly',
      role: 'r',
      amount: 900,
      currency: 'EUR',
      currentPeriodStart: p.period_start!.toISOString(),
      currentPeriodEnd: p.period_end!.toISOString(),
    });
    const receipt = await db.selectFrom('receipts').selectAll().where('payment_id', '=', b.paymentId).execute();
    t.equal(receipt.length, 1, 'a receipt');
    t.equal(receipt[0]!.amount, 900);
    t.equal((await outboxOf('payment.completed', (d) => d['paymentId'] === b.paymentId)).length, 1);
  }
});

t.test('only the common case fits; a case it does not take is refused, not written', async (t) => {
  const plain = await approved();
  const coupon = await approved(undefined, 450);
  // A user whose older subscription for the role is past_due: the activation replaces it, one at a time.
  const replacing = await approved();
  await db
    .insertInto('subscriptions')
    .values({
      id: randomUUID(),
      user_id: replacing.userId,
      plan_id: 'm',
      plan_name: 'Monthly',
      role: 'r',
      amount: 900,
      currency: 'EUR',
      period: 'P1M',
      status: 'past_due',
    })
    .execute();
  const cancelled = await approved();
  await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', cancelled.subId).execute();
  await db.transaction().execute(async (trx) => {
    t.equal((await lockActivations(trx, [])).size, 0, 'no ids: nothing');
    t.equal((await lockActivations(trx, [randomUUID()])).size, 0, 'an id of no payment: nothing');
    await completeActivations(trx, [], new ReceiptBatch());
    const all = [plain, coupon, replacing, cancelled];
    const locked = await lockActivations(trx, [...all.map((b) => b.paymentId), randomUUID()]);
    t.equal(locked.size, 4);
    t.equal(locked.get(replacing.paymentId)!.pastDueSibling, true, 'the past_due sibling is seen');
    t.same(
      all.map((b) => activationFits(captured(locked, b.paymentId))),
      [true, false, false, false],
      'a coupon, a past_due subscription to replace, an ended subscription',
    );
    const l = captured(locked, plain.paymentId);
    const refused: [string, CapturedActivation][] = [
      ['a capture held for review', { ...l, capture: { ...l.capture, status: 'PENDING' } }],
      ['another amount', { ...l, capture: { ...l.capture, amount: 899 } }],
      ['another currency', { ...l, capture: { ...l.capture, currency: 'USD' } }],
      ['another payment named', { ...l, capture: { ...l.capture, customId: coupon.paymentId } }],
      ['a renewal', { ...l, p: { ...l.p, kind: 'renewal' } }],
      ['no order recorded', { ...l, p: { ...l.p, provider_order_id: null } }],
      ['another order named', { ...l, orderId: 'ORD-OTHER' }],
      ['another capture recorded', { ...l, p: { ...l.p, provider_capture_id: 'CAP-OTHER' } }],
      ['a payment already completed', { ...l, p: { ...l.p, status: 'completed' } }],
      ['a payment failed (refunded whole)', { ...l, p: { ...l.p, status: 'failed' } }],
      [
        'a free period',
        { ...l, p: { ...l.p, amount: 0 }, sub: { ...l.sub, amount: 0 }, capture: { ...l.capture, amount: 0 } },
      ],
      ['a subscription already active', { ...l, sub: { ...l.sub, status: 'active' } }],
    ];
    for (const [what, c] of refused) t.notOk(activationFits(c), what);
    t.ok(activationFits({ ...l, orderId: null }), 'a capture naming no order fits');
    t.ok(
      activationFits({ ...l, p: { ...l.p, provider_capture_id: l.capture.id } }),
      'the same capture recorded before (held for review) fits',
    );
    await t.rejects(
      completeActivations(trx, [captured(locked, coupon.paymentId)], new ReceiptBatch()),
      /cannot be completed set-based/,
    );
  });
  const untouched = await db
    .selectFrom('payments')
    .select('status')
    .where('id', '=', coupon.paymentId)
    .executeTakeFirstOrThrow();
  t.equal(untouched.status, 'approved');
});

/** The one-at-a-time path for the same capture: the payment completed, then the subscription activated. */
async function oneAtATime(paymentId: string, vaultId: string | null = null) {
  return db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: paymentId }))!;
    await payments.transition(trx, p, { type: 'capture_completed' }, { provider_capture_id: `capture-${paymentId}` });
    return activateSubscription(trx, p, vaultId);
  });
}

t.test('one at a time and set-based write the same rows and messages', async (t) => {
  const [a, b] = [await approved(), await approved()];
  const receipts = new ReceiptBatch();
  await db.transaction().execute(async (trx) => {
    const locked = await lockActivations(trx, [a.paymentId]);
    await completeActivations(trx, [captured(locked, a.paymentId)], receipts);
  });
  t.equal(await oneAtATime(b.paymentId), 'activated');
  const shape = async (x: typeof a) => {
    const p = await db.selectFrom('payments').selectAll().where('id', '=', x.paymentId).executeTakeFirstOrThrow();
    const s = await db.selectFrom('subscriptions').selectAll().where('id', '=', x.subId).executeTakeFirstOrThrow();
    const grants = await db.selectFrom('role_grants').selectAll().where('subscription_id', '=', x.subId).execute();
    return {
      payment: [p.status, p.failure_reason, p.provider_capture_id?.replace(x.paymentId, '')],
      period: [
        p.period_start?.getTime() === s.anchor_at?.getTime(),
        p.period_end?.getTime() === s.paid_through?.getTime(),
      ],
      sub: [s.status, s.cancel_at_period_end, s.approval_url, s.version],
      grants: grants.map((g) => [g.role, g.source, g.reason, g.held_before, g.ended_at]),
      roles: (await outboxOf('role.change.requested', (d) => d['userId'] === x.userId)).map((d) => ({
        ...d,
        userId: '',
      })),
      activated: (await outboxOf('subscription.activated', (d) => d['subscriptionId'] === x.subId)).length,
    };
  };
  t.same(await shape(a), await shape(b));
  t.match(await shape(b), { payment: ['completed', null, 'capture-'], period: [true, true], activated: 1 });
});

t.test('one at a time: a wallet kept, a past_due subscription replaced, an ended one refunded, a repeat', async (t) => {
  const withWallet = await approved();
  t.equal(await oneAtATime(withWallet.paymentId, 'VAULT-1'), 'activated');
  t.equal(
    (
      await db
        .selectFrom('subscriptions')
        .select('vault_id')
        .where('id', '=', withWallet.subId)
        .executeTakeFirstOrThrow()
    ).vault_id,
    'VAULT-1',
  );
  // The user's older subscription for the role is past_due, with its live grant: replaced.
  const replacing = await approved();
  const oldId = randomUUID();
  await db
    .insertInto('subscriptions')
    .values({
      id: oldId,
      user_id: replacing.userId,
      plan_id: 'm',
      plan_name: 'Monthly',
      role: 'r',
      amount: 900,
      currency: 'EUR',
      period: 'P1M',
      status: 'past_due',
      next_retry_at: new Date(),
    })
    .execute();
  await db
    .insertInto('role_grants')
    .values({
      id: randomUUID(),
      user_id: replacing.userId,
      role: 'r',
      source: 'subscription',
      subscription_id: oldId,
      reason: 'subscription activated',
      held_before: false,
    })
    .execute();
  t.equal(await oneAtATime(replacing.paymentId), 'activated');
  const old = await db.selectFrom('subscriptions').selectAll().where('id', '=', oldId).executeTakeFirstOrThrow();
  t.match(old, { status: 'cancelled', next_retry_at: null });
  t.ok(old.cancelled_at, 'cancelled at the new one’s start');
  const oldGrant = await db.selectFrom('role_grants').selectAll().where('subscription_id', '=', oldId).execute();
  t.equal(oldGrant[0]!.end_reason, 'replaced by a new subscription');
  t.match(await outboxOf('subscription.cancelled', (d) => d['subscriptionId'] === oldId), [
    { mode: 'immediately', refundAmount: 0, currency: 'EUR' },
  ]);
  // Ended meanwhile: nothing kept, the payment refunded whole.
  const ended = await approved();
  await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', ended.subId).execute();
  t.equal(await oneAtATime(ended.paymentId), 'refunded: subscription ended');
  const refunds = await db.selectFrom('refunds').selectAll().where('payment_id', '=', ended.paymentId).execute();
  t.match(refunds, [{ amount: 900, origin: 'late_capture', status: 'requested' }]);
  t.equal((await outboxOf('subscription.activated', (d) => d['subscriptionId'] === ended.subId)).length, 0);
  // Already active: nothing more.
  const again = await approved();
  t.equal(await oneAtATime(again.paymentId), 'activated');
  // The same step run twice (a redelivery): the subscription is already active, nothing more.
  const second = await db
    .transaction()
    .execute(async (trx) => activateSubscription(trx, (await payments.lock(trx, { id: again.paymentId }))!, null));
  t.equal(second, 'completed');
  t.equal((await outboxOf('subscription.activated', (d) => d['subscriptionId'] === again.subId)).length, 1);
});
