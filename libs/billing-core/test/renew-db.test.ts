import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  decideCharge,
  payments,
  recordCharge,
  renewalOutcome,
  requestPlanChange,
  subscriptions,
  type ChargeRefusal,
} from '../src/index.js';
import { firstPayment, MONTHLY, testContext } from './fixtures.js';

// The use case "charge a period to the buyer's saved wallet" (docs/architecture.md, use cases)
// against a real, migrated database: what a claimed charge comes to before PayPal is called, and
// what each of PayPal's answers records.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  MONTHLY,
  { id: 'big', name: 'Big', description: '', amount: 1800, currency: 'EUR', period: 'P1M', role: 'r', active: true },
]);
const { ctx } = testContext();

/** An active subscription with a saved wallet: a checkout whose capture completed. */
const active = () => firstPayment(db, 'completed');

/** A renewal of period `index` claimed by the scheduler (a `created` payment). */
async function renewal(c: { userId: string; subId: string }, amount = 900, index = 1, attempt = 0) {
  const id = randomUUID();
  await db.transaction().execute((trx) =>
    payments.create(trx, {
      id,
      subscription_id: c.subId,
      user_id: c.userId,
      kind: 'renewal',
      amount,
      currency: 'EUR',
      period_index: index,
      attempt,
    }),
  );
  return id;
}

const decide = (id: string) => db.transaction().execute((trx) => decideCharge(ctx, trx, id));
const record = (id: string, answer: Parameters<typeof recordCharge>[3]) =>
  db.transaction().execute((trx) => recordCharge(ctx, trx, id, answer));
const refusal = (issue: string): ChargeRefusal => Object.assign(new Error(`PayPal refused: ${issue}`), { issue });
const paymentOf = (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const subOf = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

t.test('a live subscription with a wallet: the charge to make, keyed for retries; then its capture', async (t) => {
  const c = await active();
  const id = await renewal(c);
  const charge = await decide(id);
  t.same(charge, {
    paymentId: id,
    amount: 900,
    currency: 'EUR',
    description: 'Monthly renewal',
    vaultId: `vault-${c.subId}`,
    idempotencyKey: `${id}:charge`,
  });
  const before = await subOf(c.subId);
  const capture = { id: `cap-${id}`, status: 'COMPLETED', amount: 900, currency: 'EUR', customId: id };
  t.equal(await record(id, { orderId: 'ORD-R', status: 'COMPLETED', customId: id, capture, vaultId: null }), 'renewed');
  t.match(await paymentOf(id), { status: 'completed', provider_order_id: 'ORD-R' });
  t.ok((await subOf(c.subId)).paid_through! > before.paid_through!, 'the period paid');
  t.equal(await decide(id), 'no-op', 'a charge claimed twice is decided once');
  t.equal(await decide(randomUUID()), 'no-op', 'no such payment');
  t.equal(await record(randomUUID(), refusal('X')), 'no-op');
});

t.test('not charged, each reason written on the payment', async (t) => {
  const ending = await active();
  await db.transaction().execute(async (trx) => {
    const s = await subscriptions.lockOrThrow(trx, ending.subId);
    await subscriptions.transition(trx, s, { type: 'cancel_at_period_end' });
  });
  const r1 = await renewal(ending);
  t.equal(await decide(r1), 'subscription ends at its period end: not charged');
  t.match(await paymentOf(r1), { status: 'cancelled' });

  const ended = await active();
  await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', ended.subId).execute();
  t.equal(await decide(await renewal(ended)), 'subscription cancelled: not charged');

  const paid = await active();
  const first = await renewal(paid);
  await db.updateTable('payments').set({ status: 'completed' }).where('id', '=', first).execute();
  const second = await renewal(paid, 900, 1, 1);
  t.equal(await decide(second), 'period already paid: not charged');
  t.match(await paymentOf(second), { status: 'cancelled', failure_reason: 'replaced' });

  const free = await active();
  const zero = await renewal(free, 0);
  t.equal(await decide(zero), 'renewed (free period, not charged)', 'a coupon made the period free: no PayPal');
  t.match(await paymentOf(zero), { status: 'completed' });
});

t.test('no wallet: the buyer is asked for one, the old method never charged again', async (t) => {
  const c = await active();
  await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', c.subId).execute();
  const id = await renewal(c);
  t.equal(await decide(id), 'no payment method');
  t.match(await paymentOf(id), { status: 'failed', failure_reason: 'no_payment_method' });
  t.match(await subOf(c.subId), {
    status: 'past_due',
    payment_method_required: 'no_payment_method',
    next_retry_at: null,
  });
});

t.test("PayPal's refusals: a decline goes to dunning; a wallet PayPal no longer knows needs the buyer", async (t) => {
  const declined = await active();
  const d = await renewal(declined);
  t.equal(await record(d, refusal('INSTRUMENT_DECLINED')), 'declined');
  t.match(await paymentOf(d), { status: 'failed', failure_reason: 'declined' });
  const s = await subOf(declined.subId);
  t.match(s, { status: 'past_due', payment_method_required: null });
  t.ok(s.next_retry_at, 'retried on the dunning schedule');

  const gone = await active();
  const g = await renewal(gone);
  t.equal(await record(g, refusal('AGREEMENT_ALREADY_CANCELLED')), 'refused: AGREEMENT_ALREADY_CANCELLED');
  t.match(await subOf(gone.subId), {
    status: 'past_due',
    payment_method_required: 'payment_token_deleted',
    next_retry_at: null,
  });
  t.equal(await record(g, refusal('AGREEMENT_ALREADY_CANCELLED')), 'refused: AGREEMENT_ALREADY_CANCELLED');
  const told = await db
    .selectFrom('outbox')
    .select('envelope')
    .where('type', '=', 'subscription.payment_method_required')
    .execute();
  t.equal(
    told.filter((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === gone.subId).length,
    1,
    'the buyer told once',
  );
});

t.test('a hard decline stops dunning at once and asks the buyer; a soft one follows the schedule', async (t) => {
  // docs/paypal.md, declines: PayPal's issues that only the buyer can clear.
  for (const issue of ['PAYER_CANNOT_PAY', 'PAYER_ACCOUNT_RESTRICTED', 'CARD_EXPIRED']) {
    const c = await active();
    const id = await renewal(c);
    t.equal(await record(id, refusal(issue)), 'declined', issue);
    t.match(await paymentOf(id), { status: 'failed', failure_reason: 'declined' });
    t.match(
      await subOf(c.subId),
      { status: 'past_due', payment_method_required: 'payer_action_required', next_retry_at: null },
      `${issue}: no retry scheduled, the buyer must act`,
    );
    const told = (
      await db.selectFrom('outbox').select(['type', 'envelope']).where('type', 'like', 'subscription.%').execute()
    )
      .filter((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === c.subId)
      .map((r) => [r.type, (r.envelope as { data: { reason?: string } }).data.reason]);
    t.match(
      told.filter(([type]) => type !== 'subscription.activated'),
      [
        ['subscription.renewal_failed', 'declined'],
        ['subscription.payment_method_required', 'payer_action_required'],
      ],
      `${issue}: told as a decline, then asked for a new method`,
    );
  }
});

t.test("a plan's own dunning schedule: its retries from the first failure, its last as the deadline", async (t) => {
  // docs/scheduler.md, renewals and dunning; docs/admin.md, plans: dunningSchedule.
  await importCatalog(db, [{ ...MONTHLY, id: 'sched', dunningSchedule: ['PT10M', 'PT1H'] }]);
  const onSchedule = async () => {
    const c = await active();
    await db.updateTable('subscriptions').set({ plan_id: 'sched' }).where('id', '=', c.subId).execute();
    return c;
  };
  const c = await onSchedule();
  await record(await renewal(c), refusal('INSTRUMENT_DECLINED'));
  const first = (await subOf(c.subId)).dunning_started_at!;
  t.equal((await subOf(c.subId)).next_retry_at?.getTime(), first.getTime() + 10 * 60_000, 'retry 1: 10 minutes on');
  await record(await renewal(c, 900, 1, 1), refusal('INSTRUMENT_DECLINED'));
  t.equal((await subOf(c.subId)).next_retry_at?.getTime(), first.getTime() + 3_600_000, 'retry 2: an hour on');
  await record(await renewal(c, 900, 1, 2), refusal('INSTRUMENT_DECLINED'));
  t.match(await subOf(c.subId), { next_retry_at: null, dunning_attempts: 3 }, 'the schedule exhausted: no retry');

  const hard = await onSchedule();
  await record(await renewal(hard), refusal('PAYER_CANNOT_PAY'));
  const h = await subOf(hard.subId);
  t.equal(
    h.payment_method_deadline?.getTime(),
    h.dunning_started_at!.getTime() + 3_600_000,
    "the buyer has until the schedule's last retry time",
  );
});

t.test("a plan change's payment: charged while the change is pending, failed alone when refused", async (t) => {
  const c = await active();
  const change = await db.transaction().execute(async (trx) => {
    const s = await subscriptions.lockOrThrow(trx, c.subId);
    return requestPlanChange(trx, s, 'big', new Date());
  });
  if (change.kind !== 'charging') throw new Error(`expected a charge, got ${change.kind}`);
  const charge = await decide(change.paymentId);
  t.match(charge, { paymentId: change.paymentId, description: 'Monthly → big: plan change' });
  t.equal(await record(change.paymentId, refusal('TRANSACTION_REFUSED')), 'refused: TRANSACTION_REFUSED');
  t.match(await db.selectFrom('plan_changes').selectAll().where('id', '=', change.change.id).executeTakeFirst(), {
    status: 'failed',
  });
  t.match(await subOf(c.subId), { status: 'active', plan_id: 'm' }, 'the subscription untouched');

  // A hard decline of a plan change's payment fails the change alone: no dunning, nothing asked.
  const h = await active();
  const hard = await db
    .transaction()
    .execute(async (trx) => requestPlanChange(trx, await subscriptions.lockOrThrow(trx, h.subId), 'big', new Date()));
  if (hard.kind !== 'charging') throw new Error(`expected a charge, got ${hard.kind}`);
  t.equal(await record(hard.paymentId, refusal('PAYER_CANNOT_PAY')), 'declined');
  t.match(await db.selectFrom('plan_changes').selectAll().where('id', '=', hard.change.id).executeTakeFirst(), {
    status: 'failed',
  });
  t.match(
    await subOf(h.subId),
    { status: 'active', plan_id: 'm', payment_method_required: null, next_retry_at: null },
    'the subscription untouched by a declined plan change',
  );

  const stale = await active();
  const again = await db.transaction().execute(async (trx) => {
    const s = await subscriptions.lockOrThrow(trx, stale.subId);
    return requestPlanChange(trx, s, 'big', new Date());
  });
  if (again.kind !== 'charging') throw new Error(`expected a charge, got ${again.kind}`);
  await db.updateTable('subscriptions').set({ status: 'cancelled' }).where('id', '=', stale.subId).execute();
  t.equal(await decide(again.paymentId), 'plan change no longer applies: not charged');
});

t.test("renewal_charges_total's labels", async (t) => {
  t.equal(renewalOutcome('renewed'), 'paid');
  t.equal(renewalOutcome('activated'), 'paid');
  t.equal(renewalOutcome('completed'), 'paid');
  t.equal(renewalOutcome('declined'), 'declined');
  t.equal(renewalOutcome('no payment method'), 'no_payment_method');
  t.equal(renewalOutcome('refused: PAYER_CANNOT_PAY'), 'refused');
  t.equal(renewalOutcome('renewed (free period, not charged)'), 'paid');
  t.equal(renewalOutcome('period already paid: not charged'), 'not_charged');
  t.equal(renewalOutcome('refunded: subscription ended'), 'refunded');
  t.equal(renewalOutcome('capture pending'), 'pending');
});
