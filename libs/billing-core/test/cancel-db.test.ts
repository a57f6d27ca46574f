import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { cancelSubscription, resumeSubscription, subscriptions } from '../src/index.js';
import { firstPayment, MONTHLY } from './fixtures.js';

// The use case "cancel" (docs/architecture.md, use cases; docs/api.md, cancel and resume) against a
// real, migrated database: at the period end (undone by resume), at once with the unused time
// refunded pro rata and the grant ended, a checkout never paid, and each twice.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [MONTHLY]);
const DAY = 86_400_000;
const subOf = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const cancel = (id: string, mode: 'at_period_end' | 'immediately', now: Date, by = 'user:u') =>
  db
    .transaction()
    .execute(async (trx) =>
      cancelSubscription(trx, (await subscriptions.lock(trx, id))!, mode, now, { by, reason: 'test' }),
    );
const messages = async (subId: string) =>
  (await db.selectFrom('outbox').select(['type', 'envelope']).where('type', '=', 'subscription.cancelled').execute())
    .map((r) => (r.envelope as { data: Record<string, unknown> }).data)
    .filter((d) => d['subscriptionId'] === subId);

t.test('at the period end: the role stays, told once with the end; resume undoes it', async (t) => {
  const c = await firstPayment(db, 'completed');
  const now = new Date();
  const r = await cancel(c.subId, 'at_period_end', now);
  t.match(r, { changed: true, refundAmount: 0 });
  const s = await subOf(c.subId);
  t.match(s, { status: 'active', cancel_at_period_end: true });
  t.match(await cancel(c.subId, 'at_period_end', now), { changed: false }, 'twice: nothing');
  t.match(await messages(c.subId), [
    { mode: 'at_period_end', cancelledAt: null, endsAt: s.paid_through!.toISOString() },
  ]);
  const grants = await db.selectFrom('role_grants').selectAll().where('subscription_id', '=', c.subId).execute();
  t.match(grants, [{ ended_at: null }], 'the role stays until then');

  const resumed = await db
    .transaction()
    .execute(async (trx) => resumeSubscription(trx, (await subscriptions.lock(trx, c.subId))!, new Date()));
  t.equal(resumed, true);
  t.match(await subOf(c.subId), { status: 'active', cancel_at_period_end: false });
});

t.test('at once: the unused time refunded pro rata, the grant ended, told once', async (t) => {
  const c = await firstPayment(db, 'completed');
  const s = await subOf(c.subId);
  // A third of the month used: about two thirds of 9.00 go back.
  const at = new Date(s.anchor_at!.getTime() + (s.paid_through!.getTime() - s.anchor_at!.getTime()) / 3);
  const r = await cancel(c.subId, 'immediately', at);
  t.ok(r.refundAmount >= 590 && r.refundAmount <= 610, `refunded ${r.refundAmount} of 900`);
  t.match(await subOf(c.subId), { status: 'cancelled', cancelled_at: at });
  t.match(await db.selectFrom('refunds').selectAll().where('payment_id', '=', c.paymentId).execute(), [
    { amount: r.refundAmount, status: 'requested', origin: 'user_cancel' },
  ]);
  const grants = await db.selectFrom('role_grants').selectAll().where('subscription_id', '=', c.subId).execute();
  t.ok(
    grants.every((g) => g.ended_at !== null),
    'the grant ended',
  );
  t.match(await cancel(c.subId, 'immediately', at), { changed: false, refundAmount: 0 }, 'twice: nothing more');
  t.match(await messages(c.subId), [{ mode: 'immediately', refundAmount: r.refundAmount }]);

  const op = await firstPayment(db, 'completed');
  await cancel(op.subId, 'immediately', new Date(Date.now() + DAY), 'operator:ops');
  t.match(await db.selectFrom('refunds').selectAll().where('payment_id', '=', op.paymentId).execute(), [
    { origin: 'operator' },
  ]);
});

t.test('a checkout never paid: cancelled, its payment ended, nobody told', async (t) => {
  const c = await firstPayment(db, 'pending');
  t.match(await cancel(c.subId, 'immediately', new Date()), { changed: true, refundAmount: 0 });
  t.match(await subOf(c.subId), { status: 'cancelled', approval_url: null });
  const p = await db.selectFrom('payments').selectAll().where('id', '=', c.paymentId).executeTakeFirstOrThrow();
  t.not(p.status, 'pending', `its payment ended (${p.status})`);
  t.same(await messages(c.subId), []);
});
