import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { createCoupon, redeemCoupon, remindRenewals, requestPlanChange, subscriptions } from '../src/index.js';
import { firstPayment, MONTHLY } from './fixtures.js';

// The use case "remind the buyer of a renewal" (docs/scheduler.md, renewal reminders) against a
// real, migrated database: when each reminder falls due, once per period, what it says.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [MONTHLY, { ...MONTHLY, id: 'small', name: 'Small', amount: 500 }]);
await db.transaction().execute((trx) =>
  createCoupon(trx, {
    code: 'HALF2',
    percentOff: 50,
    amountOff: null,
    currency: null,
    durationPeriods: 2,
    maxRedemptions: null,
    maxRedemptionsPerUser: null,
    expiresAt: null,
  }),
);
const leads = { lead: 'P7D', yearlyLead: 'P15D' };
const DAY = 86_400_000;
const at = (t0: Date, ms: number) => new Date(t0.getTime() + ms);
const subOf = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
/** The reminders in the outbox for one subscription, oldest first. */
const sent = async (subId: string) =>
  (
    await db
      .selectFrom('outbox')
      .select('envelope')
      .where('type', '=', 'subscription.renewal_upcoming')
      .orderBy('id')
      .execute()
  )
    .map((r) => (r.envelope as { data: Record<string, unknown> }).data)
    .filter((d) => d['subscriptionId'] === subId);
/** Every other subscription of earlier tests reminded already: `remindRenewals` counts only these. */
const remind = (now: Date) => remindRenewals(db, now, leads);

t.test('a monthly plan: 7 days before its renewal, once, with the price and the next period', async (t) => {
  const c = await firstPayment(db, 'completed');
  const end = (await subOf(c.subId)).paid_through!;
  t.equal(await remind(at(end, -8 * DAY)), 0, 'not 8 days before');
  t.equal(await remind(at(end, -7 * DAY + 1000)), 1, '7 days before');
  t.equal(await remind(at(end, -6 * DAY)), 0, 'once per period');
  const [note] = await sent(c.subId);
  t.same(note, {
    userId: c.userId,
    subscriptionId: c.subId,
    planId: 'm',
    planName: 'Monthly',
    amount: 900,
    currency: 'EUR',
    renewsAt: end.toISOString(),
    periodEnd: note!['periodEnd'],
  });
  t.ok(Date.parse(note!['periodEnd'] as string) - end.getTime() >= 28 * DAY, 'the renewed period ends a month on');
  t.match(await subOf(c.subId), { renewal_reminded_for: end });

  // The renewal paid: the next period's reminder falls due in its turn.
  const next = new Date(Date.parse(note!['periodEnd'] as string));
  await db.updateTable('subscriptions').set({ paid_through: next }).where('id', '=', c.subId).execute();
  t.equal(await remind(at(next, -7 * DAY - 1000)), 0);
  t.equal(await remind(at(next, -7 * DAY + 1000)), 1);
  t.equal((await sent(c.subId)).length, 2);
  t.equal(await remind(at(next, 1000)), 0, 'not once the renewal time has passed');
});

t.test('replicas released at once send one reminder between them', async (t) => {
  const c = await firstPayment(db, 'completed');
  const end = (await subOf(c.subId)).paid_through!;
  const at = new Date(end.getTime() - 7 * DAY + 1000);
  const told = await Promise.all(Array.from({ length: 5 }, () => remind(at)));
  t.equal(
    told.reduce((a, b) => a + b, 0),
    1,
    'one reminder in all',
  );
  t.equal((await sent(c.subId)).length, 1);
});

t.test('yearly plans 15 days before; short periods at half the period', async (t) => {
  const y = await firstPayment(db, 'completed');
  const now = new Date();
  const yearEnd = at(now, 365 * DAY);
  await db
    .updateTable('subscriptions')
    .set({ period: 'P1Y', anchor_at: now, paid_through: yearEnd })
    .where('id', '=', y.subId)
    .execute();
  t.equal(await remind(at(yearEnd, -16 * DAY)), 0);
  t.equal(await remind(at(yearEnd, -15 * DAY + 1000)), 1);

  const s = await firstPayment(db, 'completed');
  const shortEnd = at(now, 30_000);
  await db
    .updateTable('subscriptions')
    .set({ period: 'PT30S', anchor_at: now, paid_through: shortEnd })
    .where('id', '=', s.subId)
    .execute();
  t.equal(await remind(at(now, 14_000)), 0, 'not before half the period');
  t.equal(await remind(at(now, 15_500)), 1, 'at half of PT30S');
  t.equal((await sent(s.subId))[0]!['periodEnd'], at(now, 60_000).toISOString());
});

t.test('the amount the renewal will charge: a coupon covering it, a downgrade scheduled by then', async (t) => {
  const c = await firstPayment(db, 'completed', 450);
  await db
    .transaction()
    .execute((trx) => redeemCoupon(trx, 'HALF2', { currency: 'EUR', userId: c.userId, subscriptionId: c.subId }));
  const end = (await subOf(c.subId)).paid_through!;
  await remind(at(end, -DAY));
  t.match(await sent(c.subId), [{ amount: 450, planId: 'm' }], 'the second period is still half price');

  const d = await firstPayment(db, 'completed');
  await db
    .transaction()
    .execute(async (trx) => requestPlanChange(trx, (await subscriptions.lock(trx, d.subId))!, 'small', new Date()));
  const dEnd = (await subOf(d.subId)).paid_through!;
  await remind(at(dEnd, -DAY));
  t.match(await sent(d.subId), [{ amount: 500, planId: 'small', planName: 'Small' }], 'the plan it renews into');
});

t.test('no reminder: set to end at its period end, in dunning, in a trial, not yet active', async (t) => {
  const ids = [];
  for (const change of [
    { cancel_at_period_end: true },
    { status: 'past_due' as const },
    { status: 'trialing' as const },
  ]) {
    const c = await firstPayment(db, 'completed');
    await db.updateTable('subscriptions').set(change).where('id', '=', c.subId).execute();
    ids.push(c.subId);
  }
  ids.push((await firstPayment(db, 'pending')).subId);
  const latest = Math.max(
    ...(await Promise.all(ids.map(async (id) => (await subOf(id)).paid_through?.getTime() ?? 0))),
  );
  await remind(at(new Date(latest), -DAY));
  for (const id of ids) t.same(await sent(id), [], id);
});
