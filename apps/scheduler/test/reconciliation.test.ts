import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { reconciliationJob } from '../src/jobs/reconciliation.job.js';

const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  {
    id: 'hourly',
    name: 'Hourly',
    description: '',
    amount: 1200,
    currency: 'USD',
    period: 'PT1H',
    role: 'hourly',
    active: true,
  },
]);

t.test('a stale renewal at PayPal is looked up with leave to end it (docs/scheduler.md, reconciliation)', async (t) => {
  const anchor = new Date(Date.now() - 50 * 60_000);
  const sub = {
    id: randomUUID(),
    user_id: 'u-stuck',
    plan_id: 'hourly',
    plan_name: 'Hourly',
    role: 'hourly',
    amount: 1200,
    currency: 'USD',
    period: 'PT1H',
    status: 'active' as const,
    anchor_at: anchor,
    paid_through: new Date(anchor.getTime() + 3_600_000),
    vault_id: 'V',
  };
  await db.insertInto('subscriptions').values(sub).execute();
  const orderId = 'ORD-STUCK-1';
  await db
    .insertInto('payments')
    .values({
      id: randomUUID(),
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'renewal',
      amount: 1200,
      currency: 'USD',
      status: 'pending',
      period_index: 1,
      provider_order_id: orderId,
      updated_at: new Date(Date.now() - 20 * 60_000),
    })
    .execute();
  await reconciliationJob(db, 15 * 60_000, 3 * 3_600_000).run(new Date());
  const rows = await db.selectFrom('outbox').select('envelope').where('type', '=', 'payment.check.requested').execute();
  const data = rows
    .map((r) => (typeof r.envelope === 'string' ? JSON.parse(r.envelope) : r.envelope).data)
    .find((d) => d.orderId === orderId);
  t.same(
    data,
    { orderId, source: 'reconciliation', expireUnapproved: true },
    'a renewal waiting on a buyer who is not there is ended, not waited on for ever',
  );
});

t.test(
  'a webhook event stored but never processed is handed to the payment-worker again, a bounded number of times (docs/scheduler.md, reconciliation)',
  async (t) => {
    const id = randomUUID();
    await db
      .insertInto('provider_events')
      .values({
        id,
        provider: 'paypal',
        provider_event_id: 'WH-LOST-1',
        event_type: 'PAYMENT.CAPTURE.COMPLETED',
        payload: JSON.stringify({ id: 'WH-LOST-1' }),
        received_at: new Date(Date.now() - 20 * 60_000),
      })
      .execute();
    const fresh = randomUUID();
    await db
      .insertInto('provider_events')
      .values({
        id: fresh,
        provider: 'paypal',
        provider_event_id: 'WH-FRESH-1',
        event_type: 'PAYMENT.CAPTURE.COMPLETED',
        payload: JSON.stringify({ id: 'WH-FRESH-1' }),
      })
      .execute();
    const sent = async () =>
      (
        await db.selectFrom('outbox').select('envelope').where('type', '=', 'payment.provider-event.received').execute()
      ).map(
        (r) => (typeof r.envelope === 'string' ? JSON.parse(r.envelope) : r.envelope).data.providerEventRowId as string,
      );
    const job = reconciliationJob(db, 15 * 60_000, 3 * 3_600_000);
    await job.run(new Date());
    t.same(await sent(), [id], 'the stale unprocessed event is sent again; a fresh one is left to its own message');
    await job.run(new Date());
    t.equal((await sent()).length, 1, 'not again until RECONCILE_AFTER_MS has passed');
    for (let i = 1; i <= 5; i++) await job.run(new Date(Date.now() + i * 16 * 60_000));
    t.equal(
      (await sent()).filter((e) => e === id).length,
      3,
      'at most three sweeps: an event that still fails is in dead_letters for an operator',
    );
  },
);

t.test('a plan change whose charge never started is failed, not expired as a checkout', async (t) => {
  await importCatalog(db, [
    {
      id: 'hourly-plus',
      name: 'Hourly+',
      description: '',
      amount: 3600,
      currency: 'USD',
      period: 'PT1H',
      role: 'hourly-plus',
      active: true,
    },
  ]);
  const anchor = new Date(Date.now() - 30 * 60_000);
  const sub = {
    id: randomUUID(),
    user_id: `u-${randomUUID()}`,
    plan_id: 'hourly',
    plan_name: 'Hourly',
    role: 'hourly',
    amount: 1200,
    currency: 'USD',
    period: 'PT1H',
    status: 'active' as const,
    anchor_at: anchor,
    paid_through: new Date(anchor.getTime() + 3_600_000),
    vault_id: 'V',
  };
  await db.insertInto('subscriptions').values(sub).execute();
  const paymentId = randomUUID();
  const longAgo = new Date(Date.now() - 20 * 60_000);
  await db
    .insertInto('payments')
    .values({
      id: paymentId,
      subscription_id: sub.id,
      user_id: sub.user_id,
      kind: 'upgrade',
      amount: 1200,
      currency: 'USD',
      status: 'created',
      period_index: 0,
      attempt: 1,
      created_at: longAgo,
      updated_at: longAgo,
    })
    .execute();
  const changeId = randomUUID();
  await db
    .insertInto('plan_changes')
    .values({
      id: changeId,
      subscription_id: sub.id,
      user_id: sub.user_id,
      from_plan_id: 'hourly',
      to_plan_id: 'hourly-plus',
      kind: 'upgrade',
      amount: 1200,
      credit: 0,
      refund_excess: 0,
      currency: 'USD',
      effective_at: longAgo,
      status: 'pending',
      payment_id: paymentId,
    })
    .execute();
  await reconciliationJob(db, 15 * 60_000, 3 * 3_600_000).run(new Date());
  const change = await db.selectFrom('plan_changes').selectAll().where('id', '=', changeId).executeTakeFirstOrThrow();
  t.equal(change.status, 'failed', 'the change is no longer pending: a later change can be asked for');
  const payment = await db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirstOrThrow();
  t.equal(payment.status, 'cancelled');
  const after = await db.selectFrom('subscriptions').selectAll().where('id', '=', sub.id).executeTakeFirstOrThrow();
  t.match(after, { status: 'active', plan_id: 'hourly' }, 'the subscription goes on as it was');
  const told = (
    await db.selectFrom('outbox').select('envelope').where('type', '=', 'subscription.plan_change_failed').execute()
  ).filter((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === sub.id);
  t.equal(told.length, 1, 'the buyer is told once');
  await reconciliationJob(db, 15 * 60_000, 3 * 3_600_000).run(new Date(Date.now() + 30 * 60_000));
  t.equal(
    (await db.selectFrom('outbox').select('envelope').where('type', '=', 'subscription.plan_change_failed').execute())
      .length,
    1,
    'a second pass changes nothing',
  );
});
