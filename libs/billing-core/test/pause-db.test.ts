import t from 'tap';
import { sql } from 'kysely';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import {
  cancelSubscription,
  chargedBack,
  pauseSubscription,
  resumeDuePauses,
  resumePausedSubscription,
  payments,
  subscriptions,
  type PauseRefusal,
} from '../src/index.js';
import { firstPayment, MONTHLY } from './fixtures.js';

// The use case "pause a subscription, and resume it" (docs/api.md, pause and resume) against a
// real, migrated database: the refusals, what a pause ends, and what a resume moves by the paused time.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [MONTHLY, { ...MONTHLY, id: 'short', maxPause: 'P10D' }]);

const DAY = 86_400_000;
const row = {
  sub: (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
  payments: (subId: string) =>
    db.selectFrom('payments').selectAll().where('subscription_id', '=', subId).orderBy('created_at').execute(),
  grants: (subId: string) =>
    db.selectFrom('role_grants').selectAll().where('subscription_id', '=', subId).orderBy('started_at').execute(),
  pauses: (subId: string) =>
    db.selectFrom('subscription_pauses').selectAll().where('subscription_id', '=', subId).execute(),
  sent: async (type: string, subId: string) =>
    (await db.selectFrom('outbox').selectAll().where('type', '=', type).execute()).filter((o) =>
      JSON.stringify(o.envelope).includes(subId),
    ),
};
const pause = (subId: string, opts: { now?: Date; resumesAt?: Date } = {}) =>
  db.transaction().execute(async (trx) =>
    pauseSubscription(trx, await subscriptions.lockOrThrow(trx, subId), {
      now: opts.now ?? new Date(),
      resumesAt: opts.resumesAt,
      by: 'user:t',
    }),
  );
const resume = (subId: string, now = new Date()) =>
  db
    .transaction()
    .execute(async (trx) =>
      resumePausedSubscription(trx, await subscriptions.lockOrThrow(trx, subId), { now, by: 'user:t' }),
    );
/** Moves a pause `days` into the past, as if it had begun then. */
const pausedDaysAgo = (subId: string, days: number) =>
  db
    .updateTable('subscriptions')
    .set({ paused_at: sql`paused_at - make_interval(days => ${days})` })
    .where('id', '=', subId)
    .execute();

t.test('a pause: no role, one pause at a time, until the plan allows; the refusals', async (t) => {
  const c = await firstPayment(db, 'completed');
  const now = new Date();
  const paused = await pause(c.subId, { now });
  t.match(paused, { status: 'paused', paused_at: now });
  const s = await row.sub(c.subId);
  const threeMonths = new Date(now);
  threeMonths.setUTCMonth(threeMonths.getUTCMonth() + 3);
  t.equal(s.resumes_at?.getTime(), threeMonths.getTime(), 'no resumesAt: the longest pause, P3M');
  t.ok(
    (await row.grants(c.subId)).every((g) => g.ended_at),
    'the grant ended',
  );
  t.equal((await row.sent('subscription.paused', c.subId)).length, 1);
  t.match(await row.pauses(c.subId), [{ paused_at: now, resumed_at: null, paused_by: 'user:t' }]);
  t.match(await pause(c.subId), { code: 'not-pausable', detail: /paused already/ });

  const short = await firstPayment(db, 'completed');
  await db.updateTable('subscriptions').set({ plan_id: 'short' }).where('id', '=', short.subId).execute();
  t.match(await pause(short.subId, { resumesAt: new Date(Date.now() + 11 * DAY) }), {
    code: 'pause-too-long',
    detail: /at most P10D/,
  });
  t.match(await pause(short.subId, { resumesAt: new Date(Date.now() - 1000) }), { code: 'validation' });
  t.match(await pause(short.subId, { resumesAt: new Date(Date.now() + 9 * DAY) }), { status: 'paused' });

  const pending = await firstPayment(db, 'approved');
  t.match(await pause(pending.subId), { code: 'not-pausable', detail: /pending subscription/ });
  const ending = await firstPayment(db, 'completed');
  await db.transaction().execute(async (trx) =>
    cancelSubscription(trx, await subscriptions.lockOrThrow(trx, ending.subId), 'at_period_end', new Date(), {
      by: 'user:t',
      reason: 't',
    }),
  );
  t.match(await pause(ending.subId), { code: 'not-pausable', detail: /set to end/ });
  const busy = await firstPayment(db, 'completed');
  await db
    .insertInto('payments')
    .values({
      id: crypto.randomUUID(),
      subscription_id: busy.subId,
      user_id: busy.userId,
      kind: 'renewal',
      amount: 900,
      currency: 'EUR',
      period_index: 1,
      status: 'pending',
    })
    .execute();
  t.match(await pause(busy.subId), { code: 'not-pausable', detail: /under way/ });
});

t.test('a resume gives back the time left: anchor, paid-through and the paid payment move by the pause', async (t) => {
  const c = await firstPayment(db, 'completed');
  const before = await row.sub(c.subId);
  const [paid] = await row.payments(c.subId);
  await pause(c.subId);
  await pausedDaysAgo(c.subId, 10);
  const pausedAt = (await row.sub(c.subId)).paused_at!;
  const now = new Date();
  const d = now.getTime() - pausedAt.getTime();
  t.match(await resume(c.subId, now), { status: 'active', paused_at: null, resumes_at: null });
  const after = await row.sub(c.subId);
  t.equal(after.anchor_at!.getTime(), before.anchor_at!.getTime() + d, 'the anchor moved by the paused time');
  t.ok(
    Math.abs(after.paid_through!.getTime() - (before.paid_through!.getTime() + d)) < 2 * DAY,
    'paid through about the paused time later (a period boundary of the new anchor)',
  );
  const [moved] = await row.payments(c.subId);
  t.equal(moved!.period_start!.getTime(), paid!.period_start!.getTime() + d);
  t.equal(moved!.period_end!.getTime(), paid!.period_end!.getTime() + d);
  const grants = await row.grants(c.subId);
  t.equal(grants.length, 2, 'a new grant');
  t.equal(grants[1]!.ended_at, null);
  t.match(await row.pauses(c.subId), [{ resumed_at: now, resumed_by: 'user:t' }]);
  const resumed = await row.sent('subscription.resumed', c.subId);
  t.equal(resumed.length, 1);
  t.match(resumed[0]!.envelope, { data: { currentPeriodEnd: after.paid_through!.toISOString() } });
  t.equal(await resume(c.subId), 'no-op', 'not paused: nothing');
  t.equal((await row.sent('subscription.resumed', c.subId)).length, 1);
});

t.test('monthly periods: after the resume, paid-through is a boundary of the shifted anchor', async (t) => {
  const c = await firstPayment(db, 'completed');
  // A subscription bought on 31 January: its periods end on the last day of shorter months.
  const anchor = new Date(Date.UTC(2026, 0, 31, 12));
  await db
    .updateTable('subscriptions')
    .set({ anchor_at: anchor, paid_through: new Date(Date.UTC(2026, 1, 28, 12)) })
    .where('id', '=', c.subId)
    .execute();
  await db
    .updateTable('subscriptions')
    .set({ status: 'paused', paused_at: new Date(Date.UTC(2026, 1, 10, 12)), resumes_at: new Date() })
    .where('id', '=', c.subId)
    .execute();
  await db
    .insertInto('subscription_pauses')
    .values({
      id: crypto.randomUUID(),
      subscription_id: c.subId,
      paused_at: new Date(Date.UTC(2026, 1, 10, 12)),
      resumes_at: new Date(),
      paused_by: 't',
    })
    .execute();
  await resume(c.subId, new Date(Date.UTC(2026, 1, 13, 12)));
  const s = await row.sub(c.subId);
  t.equal(s.anchor_at!.toISOString(), '2026-02-03T12:00:00.000Z');
  t.equal(s.paid_through!.toISOString(), '2026-03-03T12:00:00.000Z', 'one month after the new anchor');
});

t.test('cancelled while paused: refunded as of the pause, the pause closed', async (t) => {
  const c = await firstPayment(db, 'completed');
  await pause(c.subId);
  const r = await db.transaction().execute(async (trx) =>
    cancelSubscription(trx, await subscriptions.lockOrThrow(trx, c.subId), 'immediately', new Date(Date.now() + DAY), {
      by: 'user:t',
      reason: 't',
    }),
  );
  t.equal(r.subscription.status, 'cancelled');
  t.ok(r.refundAmount >= 899, `nearly all of 900 comes back (${r.refundAmount}): the time left at the pause`);
  t.match(await row.sub(c.subId), { paused_at: null, resumes_at: null });
  t.match(await row.pauses(c.subId), [{ resumed_by: 'ended: cancelled' }]);
});

t.test('the scheduler resumes due pauses once, whatever the replicas', async (t) => {
  const a = await firstPayment(db, 'completed');
  const b = await firstPayment(db, 'completed');
  const later = await firstPayment(db, 'completed');
  for (const s of [a, b]) {
    await pause(s.subId, { resumesAt: new Date(Date.now() + 1000) });
    await pausedDaysAgo(s.subId, 2);
  }
  await pause(later.subId, { resumesAt: new Date(Date.now() + DAY) });
  const at = new Date(Date.now() + 2000);
  const counts = await Promise.all([1, 2, 3].map(() => resumeDuePauses(db, at, 1)));
  t.equal(
    counts.reduce((x, y) => x + y, 0),
    2,
    'two due, two resumed in all',
  );
  for (const s of [a, b]) {
    t.equal((await row.sub(s.subId)).status, 'active');
    t.equal((await row.sent('subscription.resumed', s.subId)).length, 1, 'resumed once');
  }
  t.equal((await row.sub(later.subId)).status, 'paused', 'a pause not yet due stays');
  // (The test moved the pause back before the period began, so the paid period now starts 2 days on.)
  const r: PauseRefusal | unknown = await pause(a.subId, { now: new Date(Date.now() + 3 * DAY) });
  t.match(r, { status: 'paused' }, 'a resumed subscription can pause again');
});

t.test(
  'the money of the paused period lost after its first end: cancelled, never resumed on unpaid time',
  async (t) => {
    const c = await firstPayment(db, 'completed');
    const [paid] = await row.payments(c.subId);
    await pause(c.subId, { resumesAt: new Date(Date.now() + 60 * DAY) });
    // Paused 20 days ago, 10 days before the period (as first dated) ended; the chargeback comes now.
    await pausedDaysAgo(c.subId, 20);
    await db
      .updateTable('payments')
      .set({ period_start: new Date(Date.now() - 30 * DAY), period_end: new Date(Date.now() - 10 * DAY) })
      .where('id', '=', paid!.id)
      .execute();
    const r = await db
      .transaction()
      .execute(async (trx) => chargedBack(trx, (await payments.lock(trx, { id: paid!.id }))!));
    t.equal(r, 'reversed; subscription cancelled', 'the paused period was the one that payment held');
    t.match(await row.sub(c.subId), { status: 'cancelled', paused_at: null, resumes_at: null });
    t.match(await row.pauses(c.subId), [{ resumed_by: 'ended: cancelled' }]);
    await resumeDuePauses(db, new Date(Date.now() + 61 * DAY));
    t.equal((await row.sub(c.subId)).status, 'cancelled', 'the pause ending resumes nothing');
    t.equal((await row.sent('subscription.resumed', c.subId)).length, 0);
    t.equal((await row.sent('subscription.cancelled', c.subId)).length, 1);
    t.equal((await row.grants(c.subId)).filter((g) => g.ended_at === null).length, 0, 'no role');
  },
);
