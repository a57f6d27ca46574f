import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { payments, subscriptions } from '../src/index.js';

// The owners against a real, migrated database: a transition writes state, version and timestamp
// together; a stale event writes nothing.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  { id: 'p', name: 'P', description: '', amount: 500, currency: 'USD', period: 'P1M', role: 'r', active: true },
]);

async function pendingSubscription() {
  const id = randomUUID();
  const paymentId = randomUUID();
  await db.transaction().execute(async (trx) => {
    await subscriptions.create(trx, {
      id,
      user_id: `u-${id}`,
      plan_id: 'p',
      plan_name: 'P',
      role: 'r',
      amount: 500,
      currency: 'USD',
      period: 'P1M',
    });
    await payments.create(trx, {
      id: paymentId,
      subscription_id: id,
      user_id: `u-${id}`,
      kind: 'initial',
      amount: 500,
      currency: 'USD',
      period_index: 0,
    });
  });
  return { id, paymentId };
}
const subRow = (id: string) =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const payRow = (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

t.test('create starts a subscription pending and a payment created', async (t) => {
  const { id, paymentId } = await pendingSubscription();
  t.match(await subRow(id), { status: 'pending', version: 0 });
  t.match(await payRow(paymentId), { status: 'created' });
});

t.test(
  'a subscription transition writes state, changes and a new version in one go; the row passed in follows',
  async (t) => {
    const { id } = await pendingSubscription();
    const before = await subRow(id);
    const at = new Date('2026-01-01T00:00:00Z');
    const tr = await db.transaction().execute(async (trx) => {
      const sub = (await subscriptions.lock(trx, id))!;
      const r = await subscriptions.transition(trx, sub, { type: 'initial_payment_completed' }, (x) => ({
        anchor_at: x.status === 'active' ? at : null,
      }));
      t.equal(sub.status, 'active', "the caller's row is brought up to date");
      return r;
    });
    t.same(tr?.effects, ['grant_starts']);
    const after = await subRow(id);
    t.match(after, { status: 'active', version: before.version + 1 });
    t.equal(after.anchor_at?.toISOString(), at.toISOString());
    t.ok(after.updated_at >= before.updated_at);
  },
);

t.test('a stale subscription event writes nothing; an effect-only transition leaves the row as it is', async (t) => {
  const { id } = await pendingSubscription();
  await db
    .transaction()
    .execute(async (trx) =>
      subscriptions.transition(
        trx,
        (await subscriptions.lock(trx, id))!,
        { type: 'initial_payment_failed' },
        { cancelled_at: new Date() },
      ),
    );
  const cancelled = await subRow(id);
  t.equal(cancelled.status, 'cancelled');
  const stale = await db
    .transaction()
    .execute(async (trx) =>
      subscriptions.transition(
        trx,
        (await subscriptions.lock(trx, id))!,
        { type: 'initial_payment_failed' },
        { cancelled_at: new Date(0) },
      ),
    );
  t.equal(stale, null);
  const late = await db
    .transaction()
    .execute(async (trx) =>
      subscriptions.transition(
        trx,
        (await subscriptions.lock(trx, id))!,
        { type: 'initial_payment_completed' },
        { anchor_at: new Date() },
      ),
    );
  t.same(late?.effects, ['refund_payment'], 'a capture after the end asks for a refund');
  const after = await subRow(id);
  t.equal(after.version, cancelled.version, 'no new version');
  t.equal(after.anchor_at, null, 'nothing written');
  t.equal(after.cancelled_at?.getTime(), cancelled.cancelled_at?.getTime());
});

t.test('record and touch: fields outside the state; lock limits to the user', async (t) => {
  const { id } = await pendingSubscription();
  await db
    .transaction()
    .execute(async (trx) => subscriptions.record(trx, (await subscriptions.lock(trx, id))!, { vault_id: 'V-1' }));
  t.match(await subRow(id), { vault_id: 'V-1', version: 1 });
  await db.transaction().execute((trx) => subscriptions.touch(trx, id));
  t.equal((await subRow(id)).version, 1, 'touch keeps the version');
  t.equal(await db.transaction().execute((trx) => subscriptions.lock(trx, id, 'someone-else')), undefined);
  await t.rejects(
    db.transaction().execute((trx) => subscriptions.lockOrThrow(trx, randomUUID())),
    /does not exist/,
  );
});

t.test('a payment transition writes status and failure reason; a stale one keeps only a new capture id', async (t) => {
  const { paymentId } = await pendingSubscription();
  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: paymentId }))!;
    await payments.record(trx, p, { provider_order_id: `ORD-${paymentId}` });
    t.ok(await payments.transition(trx, p, { type: 'order_created' }));
  });
  t.equal(
    (await db.transaction().execute((trx) => payments.lock(trx, { orderId: `ORD-${paymentId}` })))?.status,
    'pending',
    'found by order id',
  );
  await db
    .transaction()
    .execute(async (trx) =>
      payments.transition(
        trx,
        (await payments.lock(trx, { id: paymentId }))!,
        { type: 'capture_mismatch' },
        { provider_capture_id: 'CAP-1' },
      ),
    );
  t.match(await payRow(paymentId), {
    status: 'failed',
    failure_reason: 'capture_mismatch',
    provider_capture_id: 'CAP-1',
  });
  const stale = await db
    .transaction()
    .execute(async (trx) =>
      payments.transition(
        trx,
        (await payments.lock(trx, { captureId: 'CAP-1' }))!,
        { type: 'capture_completed' },
        { provider_capture_id: 'CAP-2' },
      ),
    );
  t.same(stale?.effects, ['refund_in_full'], 'money taken after failure goes back');
  t.equal(
    (await payRow(paymentId)).provider_capture_id,
    'CAP-2',
    'the capture that took the money is the one named, for its refund',
  );
  const noop = await db
    .transaction()
    .execute(async (trx) =>
      payments.transition(
        trx,
        (await payments.lock(trx, { id: paymentId }))!,
        { type: 'approved' },
        { provider_capture_id: 'CAP-3' },
      ),
    );
  t.equal(noop, null);
  t.equal((await payRow(paymentId)).provider_capture_id, 'CAP-2', 'a stale event does not replace a known capture id');
  t.equal(await db.transaction().execute((trx) => payments.lock(trx, { id: 'not-a-uuid' })), undefined);
  const at = new Date('2026-02-02T00:00:00Z');
  await db.transaction().execute((trx) => payments.touch(trx, paymentId, at));
  t.equal((await payRow(paymentId)).updated_at.toISOString(), at.toISOString());
});

t.test(
  'compare-and-set without a lock: written while the status is as known, else "moved" and nothing written',
  async (t) => {
    const { id, paymentId } = await pendingSubscription();
    const order = { provider_order_id: `ORD-${paymentId}`, approval_url: 'http://paypal.test/approve' };
    const moved = await payments.transitionIfStill(db, paymentId, 'pending', { type: 'order_created' }, order);
    t.equal(moved, null, 'the machine refuses order_created from pending: nothing tried');
    t.match(await payRow(paymentId), { status: 'created', provider_order_id: null });
    const done = await payments.transitionIfStill(db, paymentId, 'created', { type: 'order_created' }, order);
    t.match(done, { status: 'pending' }, 'written: still created');
    t.match(await payRow(paymentId), { status: 'pending', provider_order_id: `ORD-${paymentId}` });
    const again = await payments.transitionIfStill(db, paymentId, 'created', { type: 'order_created' }, order);
    t.equal(again, 'moved', 'no longer created: the caller takes the lock');
    const declined = await payments.transitionIfStill(db, paymentId, 'pending', { type: 'capture_declined' });
    t.match(declined, { status: 'failed', failureReason: 'declined' });
    t.match(await payRow(paymentId), { status: 'failed', failure_reason: 'declined' }, 'the failure reason written');
    const before = await subRow(id);
    await subscriptions.recordById(db, id, { approval_url: 'http://paypal.test/approve' });
    t.match(await subRow(id), {
      approval_url: 'http://paypal.test/approve',
      version: before.version + 1,
      status: 'pending',
    });
  },
);

t.test('endOpen ends only the payments still created or pending, each through the machine', async (t) => {
  const { id, paymentId } = await pendingSubscription();
  const done = randomUUID();
  await db
    .insertInto('payments')
    .values({
      id: done,
      subscription_id: id,
      user_id: `u-${id}`,
      kind: 'renewal',
      amount: 500,
      currency: 'USD',
      status: 'completed',
      period_index: 1,
    })
    .execute();
  await db.transaction().execute((trx) => payments.endOpen(trx, id, { type: 'checkout_expired' }));
  t.match(await payRow(paymentId), { status: 'cancelled', failure_reason: 'checkout_expired' });
  t.match(await payRow(done), { status: 'completed' }, 'a completed one is left alone');
});
