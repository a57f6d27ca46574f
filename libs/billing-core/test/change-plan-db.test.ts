import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  applyDueScheduledChanges,
  applyPlanChange,
  dropScheduledChange,
  planChangeFailed,
  planChangeFor,
  planChangeOfPayment,
  priceOfPeriod,
  pricesOfPeriods,
  PlanChangeRefused,
  payments,
  requestPlanChange,
  subscriptions,
} from '../src/index.js';
import { firstPayment, MONTHLY } from './fixtures.js';

// The use case "change plan" (docs/architecture.md, use cases; docs/api.md, plan changes) against a
// real, migrated database: the preview and its refusals, an upgrade charged then applied, a
// downgrade scheduled, replaced, dropped and applied when due, a change of period credited, and a
// change whose payment failed.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
const plan = (id: string, amount: number, extra: Partial<typeof MONTHLY> = {}) => ({
  ...MONTHLY,
  id,
  name: id,
  amount,
  ...extra,
});
await importCatalog(db, [
  MONTHLY,
  plan('big', 1800, { role: 'r2' }),
  plan('small', 500),
  plan('weekly', 100, { period: 'P1W' }),
  plan('usd', 900, { currency: 'USD' }),
  plan('gone', 900, { active: false }),
]);

const subOf = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const changesOf = (subId: string) =>
  db.selectFrom('plan_changes').selectAll().where('subscription_id', '=', subId).orderBy('created_at').execute();
const outbox = async (type: string, subId: string) =>
  (await db.selectFrom('outbox').select('envelope').where('type', '=', type).execute()).filter((r) =>
    JSON.stringify(r.envelope).includes(subId),
  ).length;
const change = (subId: string, planId: string, now = new Date(), roles?: string[]) =>
  db.transaction().execute(async (trx) => {
    const sub = (await subscriptions.lock(trx, subId))!;
    return requestPlanChange(trx, sub, planId, now, roles ? { roles: { names: roles, readAt: now } } : {});
  });
const refusal = (err: unknown) => (err instanceof PlanChangeRefused ? err.code : `not a refusal: ${String(err)}`);

t.test('the preview refuses what cannot change, with the API problem code', async (t) => {
  const c = await firstPayment(db, 'completed');
  const sub = await subOf(c.subId);
  const now = new Date();
  t.equal(await planChangeFor(db, sub, 'm', now).catch(refusal), 'same-plan');
  t.equal(await planChangeFor(db, sub, 'nope', now).catch(refusal), 'not-found');
  t.equal(await planChangeFor(db, sub, 'gone', now).catch(refusal), 'not-found', 'a plan off sale');
  t.equal(await planChangeFor(db, sub, 'usd', now).catch(refusal), 'currency-mismatch');
  const pending = await subOf((await firstPayment(db, 'pending')).subId);
  t.equal(await planChangeFor(db, pending, 'big', now).catch(refusal), 'not-changeable', 'not active yet');
  t.equal(await planChangeFor(db, { ...sub, cancel_at_period_end: true }, 'big', now).catch(refusal), 'not-changeable');
  const { quote } = await planChangeFor(db, sub, 'big', now);
  t.equal(quote.kind, 'upgrade');
  t.ok(
    quote.amountDueNow > 0 && quote.amountDueNow <= 900,
    `the difference for the rest of the period: ${quote.amountDueNow}`,
  );
});

t.test('an upgrade to another role: charged first, then applied once, the roles switched', async (t) => {
  const c = await firstPayment(db, 'completed');
  const r = await change(c.subId, 'big', new Date(), ['r2']);
  if (r.kind !== 'charging') throw new Error(`expected a charge, got ${r.kind}`);
  t.match(await subOf(c.subId), { plan_id: 'm' }, 'nothing switches before the money is taken');
  t.equal(await outbox('payment.plan-change.requested', r.paymentId), 1, 'the payment-worker asked to charge it');
  t.match(r.change, { status: 'pending', kind: 'upgrade', role_held_before: true });
  t.equal(await change(c.subId, 'small').catch(refusal), 'not-changeable', 'one change at a time');

  const applied = await db.transaction().execute(async (trx) => {
    const sub = (await subscriptions.lock(trx, c.subId))!;
    const p = (await payments.lock(trx, { id: r.paymentId }))!;
    return [
      await applyPlanChange(trx, sub, r.change, p),
      await applyPlanChange(trx, sub, { ...r.change, status: 'applied' }, p),
    ];
  });
  t.same(applied, [true, false], 'applied once');
  t.match(await subOf(c.subId), { plan_id: 'big', amount: 1800, role: 'r2', role_held_before: true });
  t.match(await changesOf(c.subId), [{ status: 'applied' }]);
  const grants = await db.selectFrom('role_grants').selectAll().where('subscription_id', '=', c.subId).execute();
  t.match(
    grants.map((g) => [g.role, g.ended_at === null]).sort(),
    [
      ['r', false],
      ['r2', true],
    ],
    'the old role ended, the new one granted',
  );
  t.equal(await outbox('subscription.plan_changed', c.subId), 1);
});

t.test('a downgrade: scheduled for the period end, replaced, dropped, then applied when due', async (t) => {
  const c = await firstPayment(db, 'completed');
  const r = await change(c.subId, 'small');
  t.equal(r.kind, 'scheduled');
  const sub = await subOf(c.subId);
  t.match(sub, { plan_id: 'm', scheduled_plan_id: 'small' });
  t.equal(sub.scheduled_change_at?.getTime(), sub.paid_through?.getTime(), 'at the end of what is paid');
  t.equal((await change(c.subId, 'weekly')).kind, 'applied', 'another change replaces it');
  t.match(
    (await changesOf(c.subId)).map((x) => x.status),
    ['dropped', 'applied'],
    'a change of period with nothing due applies at once',
  );

  const d = await firstPayment(db, 'completed');
  await change(d.subId, 'small');
  const drop = () =>
    db.transaction().execute(async (trx) => dropScheduledChange(trx, (await subscriptions.lock(trx, d.subId))!));
  t.equal(await drop(), true);
  t.equal(await drop(), false, 'twice: nothing left to drop');
  t.match(await subOf(d.subId), { scheduled_plan_id: null, scheduled_change_at: null });

  const e = await firstPayment(db, 'completed');
  await change(e.subId, 'small');
  const due = await subOf(e.subId);
  // Its time came and the next period is paid (the renewal at the new price completed).
  await db
    .updateTable('subscriptions')
    .set({ paid_through: new Date(due.paid_through!.getTime() + 30 * 86_400_000) })
    .where('id', '=', e.subId)
    .execute();
  t.ok((await applyDueScheduledChanges(db, new Date(due.scheduled_change_at!.getTime() + 1000))) >= 1);
  t.match(await subOf(e.subId), { plan_id: 'small', amount: 500, scheduled_plan_id: null });
  t.match(await changesOf(e.subId), [{ status: 'applied' }]);
});

t.test('a change of period: the unused time credited, what it exceeds refunded', async (t) => {
  const c = await firstPayment(db, 'completed');
  const r = await change(c.subId, 'weekly');
  t.equal(r.kind, 'applied', 'the credit covers the first week: nothing to charge');
  t.ok(r.change.refund_excess > 0, `the excess: ${r.change.refund_excess}`);
  t.match(await subOf(c.subId), { plan_id: 'weekly', period: 'P1W', anchor_index: 1 });
  const refunds = await db.selectFrom('refunds').selectAll().where('payment_id', '=', c.paymentId).execute();
  t.match(refunds, [{ amount: r.change.refund_excess, status: 'requested' }], 'sent back against the first payment');
});

t.test('a change whose payment failed: the change fails once, the buyer told, the plan kept', async (t) => {
  const c = await firstPayment(db, 'completed');
  const r = await change(c.subId, 'big', new Date(), []);
  await db.transaction().execute((trx) => planChangeFailed(trx, r.change, 'declined'));
  await db.transaction().execute((trx) => planChangeFailed(trx, { ...r.change, status: 'failed' }, 'declined'));
  t.match(await changesOf(c.subId), [{ status: 'failed', failure_reason: 'declined' }]);
  t.equal(await outbox('subscription.plan_change_failed', c.subId), 1, 'told once');
  t.match(await subOf(c.subId), { plan_id: 'm', role: 'r' });
  await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', c.subId).execute();
  t.equal(await change(c.subId, 'big').catch(refusal), 'no-payment-method', 'no wallet to charge');
});

/** A renewal of period 1 in `status`, and what it pays for counted as paid when it holds money. */
async function renewal(c: { userId: string; subId: string }, status: 'created' | 'completed', amount = 900) {
  const id = randomUUID();
  await db.transaction().execute((trx) =>
    payments.create(trx, {
      id,
      subscription_id: c.subId,
      user_id: c.userId,
      kind: 'renewal',
      amount,
      currency: 'EUR',
      period_index: 1,
    }),
  );
  if (status === 'completed') {
    const sub = await subOf(c.subId);
    await db.updateTable('payments').set({ status: 'completed' }).where('id', '=', id).execute();
    await db
      .updateTable('subscriptions')
      .set({ paid_through: new Date(sub.paid_through!.getTime() + 31 * 86_400_000) })
      .where('id', '=', c.subId)
      .execute();
  }
  return id;
}

t.test('periods charged ahead: one being charged refuses; one paid is covered by the upgrade', async (t) => {
  const c = await firstPayment(db, 'completed');
  await renewal(c, 'created');
  t.equal(await change(c.subId, 'big').catch(refusal), 'not-changeable', 'the next period is being charged');

  const d = await firstPayment(db, 'completed');
  const before = await planChangeFor(db, await subOf(d.subId), 'big', new Date());
  await renewal(d, 'completed');
  const after = await planChangeFor(db, await subOf(d.subId), 'big', new Date());
  t.equal(after.ahead.periods, 1, 'one period paid ahead');
  t.ok(after.quote.amountDueNow > before.quote.amountDueNow, 'the upgrade pays the difference for it too');
  const r = await change(d.subId, 'big', new Date(), []);
  if (r.kind !== 'charging') throw new Error(r.kind);
  const of = await db.transaction().execute((trx) => planChangeOfPayment(trx, r.paymentId));
  t.equal(of?.id, r.change.id, 'the change a payment pays for');
});

t.test('a downgrade bound by a renewal claimed at its price cannot be dropped', async (t) => {
  const c = await firstPayment(db, 'completed');
  await change(c.subId, 'small');
  await renewal(c, 'created', 500);
  const dropped = await db
    .transaction()
    .execute(async (trx) => dropScheduledChange(trx, (await subscriptions.lock(trx, c.subId))!))
    .catch(refusal);
  t.equal(dropped, 'not-changeable');
  t.match(await subOf(c.subId), { scheduled_plan_id: 'small' }, 'still scheduled');
});

t.test("a period's price: a scheduled downgrade's from its time on; many at once alike", async (t) => {
  const c = await firstPayment(db, 'completed');
  await change(c.subId, 'small');
  const sub = await subOf(c.subId);
  const one = await db
    .transaction()
    .execute(async (trx) => [await priceOfPeriod(trx, sub, 0), await priceOfPeriod(trx, sub, 1)]);
  t.same(one, [900, 500]);
  const many = await db.transaction().execute((trx) =>
    pricesOfPeriods(trx, [
      { sub, k: 0 },
      { sub, k: 1 },
    ]),
  );
  t.same(many, one);
  t.same(await db.transaction().execute((trx) => pricesOfPeriods(trx, [])), []);
});

t.test('a due schedule whose change is gone is cleared', async (t) => {
  const c = await firstPayment(db, 'completed');
  const sub = await subOf(c.subId);
  await db
    .updateTable('subscriptions')
    .set({
      scheduled_plan_id: 'small',
      scheduled_change_at: new Date(Date.now() - 1000),
      paid_through: new Date(sub.paid_through!.getTime()),
    })
    .where('id', '=', c.subId)
    .execute();
  t.ok((await applyDueScheduledChanges(db, new Date())) >= 1);
  t.match(await subOf(c.subId), { plan_id: 'm', scheduled_plan_id: null, scheduled_change_at: null });
});
