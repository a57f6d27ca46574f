import { randomUUID } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { endCheckout, lockKey, openPlainCheckout, recordCheckoutOrder, subscriptions } from '../src/index.js';

// The common checkout in one statement (docs/api.md, POST /v1/subscriptions), against a real,
// migrated database: written whole when the user has nothing for the role, not at all otherwise.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
const plan = { id: 'p', name: 'P', role: 'r', amount: 500, currency: 'EUR', period: 'P1M' };
await importCatalog(db, [{ ...plan, description: '', active: true }]);

/** `holdMs`: the transaction stays open that long after the statement, as a checkout's does on a busy database. */
const open = (userId: string, holdMs = 0) => {
  const c = { subscriptionId: randomUUID(), paymentId: randomUUID(), userId, plan };
  return db.transaction().execute(async (trx) => {
    await lockKey(trx, `user:${userId}`);
    const written = await openPlainCheckout(trx, c);
    if (holdMs) await sql`select pg_sleep(${holdMs / 1000})`.execute(trx);
    return { ...c, written };
  });
};
const rowsOf = async (userId: string) => ({
  subs: await db.selectFrom('subscriptions').selectAll().where('user_id', '=', userId).execute(),
  pays: await db.selectFrom('payments').selectAll().where('user_id', '=', userId).execute(),
});

t.test('nothing for the role: the subscription and its payment, as the long way writes them', async (t) => {
  const c = await open('alice');
  t.ok(c.written);
  const { subs, pays } = await rowsOf('alice');
  t.equal(subs.length, 1);
  t.match(subs[0], {
    id: c.subscriptionId,
    plan_id: 'p',
    plan_name: 'P',
    role: 'r',
    currency: 'EUR',
    period: 'P1M',
    status: 'pending',
    role_held_before: false,
    trial_period: null,
    cancel_at_period_end: false,
  });
  t.equal(Number(subs[0]!.amount), 500);
  t.equal(pays.length, 1);
  t.match(pays[0], {
    id: c.paymentId,
    subscription_id: c.subscriptionId,
    kind: 'initial',
    currency: 'EUR',
    period_index: 0,
    attempt: 0,
    status: 'created',
  });
  t.equal(Number(pays[0]!.amount), 500);
});

for (const status of ['pending', 'trialing', 'active'] as const)
  t.test(`a ${status} subscription for the role: nothing written, the caller goes the long way`, async (t) => {
    const user = `bob-${status}`;
    const first = await open(user);
    if (status !== 'pending')
      await db
        .updateTable('subscriptions')
        .set({ status, anchor_at: new Date(), paid_through: new Date(Date.now() + 86_400_000) })
        .where('id', '=', first.subscriptionId)
        .execute();
    const second = await open(user);
    t.notOk(second.written);
    const { subs, pays } = await rowsOf(user);
    t.same(
      subs.map((s) => s.id),
      [first.subscriptionId],
    );
    t.same(
      pays.map((p) => p.id),
      [first.paymentId],
    );
  });

t.test('an ended subscription for the role does not stand in the way', async (t) => {
  const first = await open('carol');
  const sub = (await db
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', first.subscriptionId)
    .executeTakeFirst())!;
  await db.transaction().execute((trx) => subscriptions.transition(trx, sub, { type: 'replaced' }));
  t.ok((await open('carol')).written);
  t.equal((await rowsOf('carol')).subs.length, 2);
});

t.test(
  'twenty checkouts of one user released at once: one subscription written, the rest told to go the long way',
  async (t) => {
    // Each holds its transaction open after writing: without the user's lock, the others' statements
    // would not see the uncommitted subscription and would write their own.
    for (let round = 0; round < 5; round++) {
      const user = `dave-${round}`;
      const results = await Promise.all(Array.from({ length: 20 }, () => open(user, 50)));
      t.equal(results.filter((r) => r.written).length, 1, `round ${round}: one written`);
      t.equal((await rowsOf(user)).subs.length, 1);
    }
  },
);

t.test(
  'twenty checkouts of one user released at once with no lock, each holding its transaction open: one written (the unique index on pending subscriptions)',
  async (t) => {
    // The production path takes no lock (docs/api.md, how step 2 is written). Holding each
    // transaction open after its statement, the others' snapshots cannot see the first row: only
    // the index stops them (their insert waits for the first to commit, then writes nothing).
    const openUnlocked = (userId: string) => {
      const c = { subscriptionId: randomUUID(), paymentId: randomUUID(), userId, plan };
      return db.transaction().execute(async (trx) => {
        const written = await openPlainCheckout(trx, c);
        await sql`select pg_sleep(0.05)`.execute(trx);
        return written;
      });
    };
    for (let round = 0; round < 5; round++) {
      const user = `dora-${round}`;
      const written = await Promise.all(Array.from({ length: 20 }, () => openUnlocked(user)));
      t.equal(written.filter(Boolean).length, 1, `round ${round}: one written`);
      const { subs, pays } = await rowsOf(user);
      t.equal(subs.length, 1, `round ${round}: one subscription`);
      t.equal(pays.length, 1, `round ${round}: one payment`);
    }
  },
);

t.test(
  "PayPal's order recorded in one statement: the payment only if still created, the link either way",
  async (t) => {
    const c = await open('olga');
    const before = (await rowsOf('olga')).subs[0]!;
    const order = {
      paymentId: c.paymentId,
      subscriptionId: c.subscriptionId,
      orderId: 'ORD-1',
      approvalUrl: 'https://paypal/a',
    };
    t.equal(await recordCheckoutOrder(db, order), 'recorded');
    const { subs, pays } = await rowsOf('olga');
    t.match(pays[0], { status: 'pending', provider_order_id: 'ORD-1', approval_url: 'https://paypal/a' });
    t.match(subs[0], { status: 'pending', approval_url: 'https://paypal/a' });
    t.equal(subs[0]!.version, before.version + 1, 'a new version of the subscription');

    // A webhook moved the payment on first: it is left as it is, and the caller is told.
    const d = await open('pavel');
    await db.updateTable('payments').set({ status: 'approved' }).where('id', '=', d.paymentId).execute();
    const moved = {
      paymentId: d.paymentId,
      subscriptionId: d.subscriptionId,
      orderId: 'ORD-2',
      approvalUrl: 'https://paypal/b',
    };
    t.equal(await recordCheckoutOrder(db, moved), 'moved');
    const after = await rowsOf('pavel');
    t.match(after.pays[0], { status: 'approved', provider_order_id: null });
    t.match(after.subs[0], { approval_url: 'https://paypal/b' }, 'the subscription keeps the link either way');
  },
);

t.test('a checkout that ends: cancelled at the time given, its approval link cleared, once', async (t) => {
  const c = await open('erin');
  const at = new Date('2026-12-06T10:00:00Z');
  await db
    .updateTable('subscriptions')
    .set({ approval_url: 'https://paypal.test/approve/erin' })
    .where('id', '=', c.subscriptionId)
    .execute();
  const ended = await db.transaction().execute(async (trx) => {
    const sub = (await subscriptions.lock(trx, c.subscriptionId))!;
    const first = await endCheckout(trx, sub, at);
    t.equal(sub.status, 'cancelled', 'the row passed in is brought up to date');
    return { first, again: await endCheckout(trx, sub, new Date()) };
  });
  t.match(ended.first, { status: 'cancelled' });
  t.equal(ended.again, null, 'a checkout already ended: nothing written');
  const [sub] = (await rowsOf('erin')).subs;
  t.match(sub, { status: 'cancelled', approval_url: null });
  t.equal(sub!.cancelled_at!.getTime(), at.getTime());
});
