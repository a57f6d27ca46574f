import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import t from 'tap';
import type { Transaction } from 'kysely';
import { importCatalog, type Database, type SubscriptionRow } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  applyDueScheduledChanges,
  dropScheduledChange,
  payments,
  planChangeFailed,
  planChangeOfPayment,
  PlanChangeRefused,
  priceOfPeriod,
  recordOrder,
  requestPlanChange,
} from '@billing/billing-core';
import { ProviderRefusedError, type OrderState } from '@billing/payments';
import { createLogger } from '@billing/service-kit';
import { FakeProvider } from './fake-provider.js';
import { chargePlanChangeHandler, chargeRenewal } from '../src/handlers/charge-renewal.js';
import type { PaymentContext } from '../src/payments/context.js';

// Plan changes against periods already paid or claimed (docs/guarantees.md, plan changes): the price
// of a period and its plan always agree, whatever order the renewal and the change come in.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
const plan = (id: string, amount: number, period: string, role: string) => ({
  id,
  name: id,
  description: '',
  amount,
  currency: 'USD',
  period,
  role,
  active: true,
});
await importCatalog(db, [
  plan('small', 999, 'PT1H', 'small'),
  plan('big', 1900, 'PT1H', 'big'),
  plan('daily', 5000, 'P1D', 'daily'),
  plan('tiny', 499, 'PT1H', 'tiny'),
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
const provider = new FakeProvider();
const ctx: PaymentContext = { provider, logger, dunningRetryMs: [1000, 2000] };

/** An active hourly subscription on `planId`, `leftMs` before its first period ends, optionally with the next period paid. */
async function subscription(planId: 'small' | 'big', leftMs: number, opts: { nextPaid?: boolean } = {}) {
  const amount = planId === 'big' ? 1900 : 999;
  const anchor = new Date(Date.now() - HOUR + leftMs);
  const id = randomUUID();
  const userId = `u-${randomUUID()}`;
  const paidThrough = new Date(anchor.getTime() + (opts.nextPaid ? 2 : 1) * HOUR);
  await db
    .insertInto('subscriptions')
    .values({
      id,
      user_id: userId,
      plan_id: planId,
      plan_name: planId,
      role: planId,
      amount,
      currency: 'USD',
      period: 'PT1H',
      status: 'active',
      anchor_at: anchor,
      paid_through: paidThrough,
      vault_id: 'VAULT-1',
    })
    .execute();
  for (const k of opts.nextPaid ? [0, 1] : [0])
    await db
      .insertInto('payments')
      .values({
        id: randomUUID(),
        subscription_id: id,
        user_id: userId,
        kind: k === 0 ? 'initial' : 'renewal',
        amount,
        currency: 'USD',
        status: 'completed',
        period_index: k,
        period_start: new Date(anchor.getTime() + k * HOUR),
        period_end: new Date(anchor.getTime() + (k + 1) * HOUR),
        provider_capture_id: `CAP-${k}-${id}`,
      })
      .execute();
  return { id, userId, anchor, paidThrough };
}

const sub = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const locked = <T>(id: string, f: (trx: Transaction<Database>, s: SubscriptionRow) => Promise<T>) =>
  db.transaction().execute(async (trx) => {
    const s = await trx
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirstOrThrow();
    return f(trx as never, s);
  });
const change = (id: string, planId: string, now = new Date()) =>
  locked(id, (trx, s) => requestPlanChange(trx, s, planId, now));
const drop = (id: string) => locked(id, (trx, s) => dropScheduledChange(trx, s));
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (err: unknown) => (err instanceof PlanChangeRefused ? err.code : `unexpected: ${String(err)}`),
  );

/** The scheduler's claim of the next period's renewal, at the price it would charge (its own code path). */
async function claimRenewal(subId: string, status: 'created' | 'completed' = 'created') {
  const s = await sub(subId);
  const amount = await db.transaction().execute((trx) => priceOfPeriod(trx, s, 1));
  const id = randomUUID();
  await db
    .insertInto('payments')
    .values({
      id,
      subscription_id: subId,
      user_id: s.user_id,
      kind: 'renewal',
      amount,
      currency: 'USD',
      status,
      period_index: 1,
      attempt: 0,
    })
    .execute();
  return { id, amount };
}

t.test('a downgrade whose renewal was claimed at the new price can no longer be dropped or replaced', async (t) => {
  const s = await subscription('big', 10 * 60_000);
  t.equal((await change(s.id, 'small')).kind, 'scheduled');
  const renewal = await claimRenewal(s.id);
  t.equal(renewal.amount, 999, 'the renewal is claimed at the scheduled (cheaper) price');
  t.equal(await refusal(drop(s.id)), 'not-changeable', 'dropping it now would keep big at small’s price');
  const after = await sub(s.id);
  t.match(after, { scheduled_plan_id: 'small' }, 'the change stays scheduled');
  // Replacing it by another downgrade would drop it too.
  t.equal(await refusal(change(s.id, 'tiny')), 'not-changeable', 'nor replaced by another change');
  t.match(await sub(s.id), { scheduled_plan_id: 'small' });
  // Paid, then the boundary passes: the plan and the price agree.
  await chargeRenewal(ctx, db, renewal.id);
  const paid = await db.selectFrom('payments').selectAll().where('id', '=', renewal.id).executeTakeFirstOrThrow();
  t.equal(paid.status, 'completed');
  t.equal(await applyDueScheduledChanges(db, new Date(s.paidThrough.getTime() + 1000)), 1);
  t.match(await sub(s.id), { plan_id: 'small', amount: 999, role: 'small' }, 'small for the period paid at 9.99');
});

t.test('a downgrade with nothing claimed yet is dropped as before', async (t) => {
  const s = await subscription('big', 10 * 60_000);
  await change(s.id, 'small');
  t.equal(await drop(s.id), true);
  const renewal = await claimRenewal(s.id);
  t.equal(renewal.amount, 1900, 'the next period is charged at big’s price again');
});

t.test('an upgrade with the next period paid pays for that period too', async (t) => {
  const s = await subscription('small', 30 * 60_000, { nextPaid: true });
  const r = await change(s.id, 'big');
  t.equal(r.kind, 'charging', 'never applied for nothing');
  const due = r.change.amount;
  // Half of this period's difference (901 / 2, give or take the seconds) and the whole next one.
  t.ok(due >= 901 + 440 && due <= 901 + 460, `the quote covers both periods (${due})`);
  const handler = chargePlanChangeHandler(ctx);
  await handler({ db, logger, envelope: { data: { paymentId: r.kind === 'charging' ? r.paymentId : '' } } } as never);
  const p = await db
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', r.kind === 'charging' ? r.paymentId : '')
    .executeTakeFirstOrThrow();
  t.equal(p.status, 'completed');
  t.same(p.period_end, s.paidThrough, 'the upgrade pays through the end of what was paid');
  t.match(await sub(s.id), { plan_id: 'big', paid_through: s.paidThrough });
});

t.test('an upgrade 30 minutes before the end with the next period paid is not free', async (t) => {
  const s = await subscription('small', 60_000, { nextPaid: true });
  const r = await change(s.id, 'big');
  t.equal(r.kind, 'charging');
  t.ok(r.change.amount >= 901, `at least the paid-ahead period's difference (${r.change.amount})`);
});

t.test('a change of period length credits the period paid ahead', async (t) => {
  const s = await subscription('small', 30 * 60_000, { nextPaid: true });
  const r = await change(s.id, 'daily');
  t.equal(r.change.kind, 'period_change');
  t.ok(r.change.credit >= 999 + 490 && r.change.credit <= 999 + 510, `both periods credited (${r.change.credit})`);
  t.equal(r.change.amount, 5000 - r.change.credit);
  const handler = chargePlanChangeHandler(ctx);
  await handler({ db, logger, envelope: { data: { paymentId: r.kind === 'charging' ? r.paymentId : '' } } } as never);
  const after = await sub(s.id);
  t.match(after, { plan_id: 'daily', period: 'P1D' });
  const periods = await db
    .selectFrom('payments')
    .select(['period_index', 'kind'])
    .where('subscription_id', '=', s.id)
    .orderBy('period_index')
    .execute();
  t.same(
    periods.map((p) => [p.period_index, p.kind]),
    [
      [0, 'initial'],
      [1, 'renewal'],
      [2, 'upgrade'],
    ],
    'the new period is numbered after every period paid',
  );
});

t.test('a downgrade with the next period paid waits for its end', async (t) => {
  const s = await subscription('big', 30 * 60_000, { nextPaid: true });
  const r = await change(s.id, 'small');
  t.equal(r.kind, 'scheduled');
  t.same(r.change.effective_at, s.paidThrough, 'after the period paid at big’s price');
  t.equal(await applyDueScheduledChanges(db, new Date(s.anchor.getTime() + HOUR + 1000)), 0, 'not at the first end');
});

t.test('a change while the next period is being charged at the old price waits (409)', async (t) => {
  const s = await subscription('small', 5 * 60_000);
  await claimRenewal(s.id);
  t.equal(await refusal(change(s.id, 'big')), 'not-changeable');
  t.equal(await refusal(change(s.id, 'daily')), 'not-changeable');
});

t.test(
  'a renewal refused with AGREEMENT_ALREADY_CANCELLED needs the buyer: payment_method_required, the token not charged again',
  async (t) => {
    const s = await subscription('small', -60_000);
    const renewal = await claimRenewal(s.id);
    const before = provider.count('chargeVaulted');
    provider.chargeAnswer = () =>
      new ProviderRefusedError(422, 'AGREEMENT_ALREADY_CANCELLED', 'The requested agreement is already canceled.');
    t.teardown(() => {
      provider.chargeAnswer = new FakeProvider().chargeAnswer;
    });
    t.equal(await chargeRenewal(ctx, db, renewal.id), 'refused: AGREEMENT_ALREADY_CANCELLED');
    t.equal(provider.count('chargeVaulted'), before + 1);
    t.match(await sub(s.id), {
      status: 'past_due',
      payment_method_required: 'payment_token_deleted',
      next_retry_at: null,
    });
    const told = await db
      .selectFrom('outbox')
      .select('envelope')
      .where('type', '=', 'subscription.payment_method_required')
      .execute();
    t.equal(
      told.filter((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === s.id).length,
      1,
    );
  },
);

t.test(
  'an upgrade expired by the reconciliation while its charge was at PayPal: the money goes back whole, nothing switches',
  async (t) => {
    const s = await subscription('small', 30 * 60_000);
    const r = await change(s.id, 'big');
    const paymentId = r.kind === 'charging' ? r.paymentId : '';
    // The worker decided the charge; while PayPal takes it, the reconciliation ends the payment and
    // the change, as its job does.
    await db.transaction().execute(async (trx) => {
      const p = await trx.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirstOrThrow();
      await payments.transition(trx, p, { type: 'checkout_expired' });
      await planChangeFailed(trx, (await planChangeOfPayment(trx, paymentId))!, 'expired: the charge was never made');
    });
    // PayPal's answer (the charge completed) is then recorded, as the worker's record step does.
    const outcome = await db.transaction().execute(async (trx) => {
      const p = await trx
        .selectFrom('payments')
        .selectAll()
        .where('id', '=', paymentId)
        .forUpdate()
        .executeTakeFirstOrThrow();
      const answer = provider.chargeAnswer({
        paymentId,
        amount: p.amount,
        currency: 'USD',
        description: 'upgrade',
        vaultId: 'VAULT-1',
        idempotencyKey: `${paymentId}:charge`,
      }) as OrderState;
      return recordOrder(ctx, trx, p, answer);
    });
    t.equal(outcome, 'refunded: payment no longer open');
    const p = await db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirstOrThrow();
    const refunds = await db.selectFrom('refunds').selectAll().where('payment_id', '=', paymentId).execute();
    t.same(
      refunds.map((x) => x.amount),
      [p.amount],
      'refunded whole',
    );
    t.match(await sub(s.id), { plan_id: 'small', role: 'small' }, 'the plan did not switch');
    const c = await db
      .selectFrom('plan_changes')
      .selectAll()
      .where('payment_id', '=', paymentId)
      .executeTakeFirstOrThrow();
    t.equal(c.status, 'failed');
  },
);
