import { randomUUID } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { issueReceipt, payments, subscriptions } from '../src/index.js';

// Receipts against a real, migrated database (docs/api.md, `GET /v1/payments/:id/receipt`): numbered without gaps, never changed
// or deleted; the counters behind them only move forward; the audit log is insert-only.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  { id: 'p', name: 'P', description: '', amount: 500, currency: 'USD', period: 'P1M', role: 'r', active: true },
]);

async function payment(currency = 'USD') {
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
      currency,
      period: 'P1M',
    });
    await payments.create(trx, {
      id: paymentId,
      subscription_id: id,
      user_id: `u-${id}`,
      kind: 'initial',
      amount: 500,
      currency,
      period_index: 0,
    });
  });
  return { id: paymentId, user_id: `u-${id}`, amount: 500, currency };
}
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'allowed',
    (err: Error) => err.message,
  );

t.test('a completion rolled back gives its number back: the next receipt takes it, no gap', async (t) => {
  const first = await db.transaction().execute(async (trx) => issueReceipt(trx, await payment('CHF'), 'first'));
  const rolledBack = await refusal(
    db.transaction().execute(async (trx) => {
      const r = await issueReceipt(trx, await payment('CHF'), 'rolled back');
      t.equal(r.sequence, first.sequence + 1, 'the number it would have had');
      throw new Error('the completing transaction failed');
    }),
  );
  t.equal(rolledBack, 'the completing transaction failed');
  const next = await db.transaction().execute(async (trx) => issueReceipt(trx, await payment('CHF'), 'next'));
  t.equal(next.sequence, first.sequence + 1, 'the next completion takes the number back');
  t.match(next.number, /^R-\d{4}-CHF-000002$/);
});

t.test('a receipt is never changed nor deleted (triggers)', async (t) => {
  const r = await db.transaction().execute(async (trx) => issueReceipt(trx, await payment(), 'kept'));
  t.match(
    await refusal(db.updateTable('receipts').set({ amount: 1 }).where('id', '=', r.id).execute()),
    /never changed|refuse|not allowed|cannot/i,
  );
  t.match(await refusal(db.deleteFrom('receipts').where('id', '=', r.id).execute()), /delet/i);
  const still = await db.selectFrom('receipts').selectAll().where('id', '=', r.id).executeTakeFirstOrThrow();
  t.equal(Number(still.amount), 500);
});

t.test('document counters only move forward, and are never deleted', async (t) => {
  await db.transaction().execute(async (trx) => issueReceipt(trx, await payment('SEK'), 'one'));
  const rewind = await refusal(
    db
      .updateTable('document_counters')
      .set({ last: sql`last - 1` })
      .where('currency', '=', 'SEK')
      .execute(),
  );
  t.not(rewind, 'allowed', 'a counter cannot be rewound (a number would be issued twice)');
  t.not(
    await refusal(db.deleteFrom('document_counters').where('currency', '=', 'SEK').execute()),
    'allowed',
    'nor deleted',
  );
  t.equal(
    await refusal(
      db
        .updateTable('document_counters')
        .set({ last: sql`last + 1` })
        .where('currency', '=', 'SEK')
        .execute(),
    ),
    'allowed',
    'forward is how numbers are taken',
  );
});

t.test('the audit log is insert-only', async (t) => {
  const id = randomUUID();
  await db
    .insertInto('audit_log')
    .values({ id, actor: 'op', action: 'test', target: 'x', reason: 'r', before: null, after: null })
    .execute();
  t.not(
    await refusal(db.updateTable('audit_log').set({ reason: 'rewritten' }).where('id', '=', id).execute()),
    'allowed',
    'an audit row is never rewritten',
  );
  t.not(await refusal(db.deleteFrom('audit_log').where('id', '=', id).execute()), 'allowed', 'nor deleted');
});

t.test(
  'a receipt, its number and its message in one statement; past 999999 the number grows, it is not cut',
  async (t) => {
    const first = await payment('NOK');
    const envelope = {
      id: randomUUID(),
      type: 'payment.completed',
      version: 1 as const,
      occurredAt: new Date().toISOString(),
      correlationId: randomUUID(),
      data: { paymentId: first.id, receiptNumber: '' },
    };
    const r = await db.transaction().execute((trx) =>
      issueReceipt(trx, first, 'with message', {
        exchange: 'notifications',
        routingKey: 'billing.payment.completed',
        envelope,
      }),
    );
    const year = new Date().getUTCFullYear();
    t.equal(r.number, `R-${year}-NOK-000001`);
    t.equal(r.amount, 500, 'money read back as a number');
    const queued = await db.selectFrom('outbox').select(['envelope', 'type']).where('id', 'is not', null).execute();
    const mine = queued.map((q) => q.envelope as typeof envelope).find((e) => e.id === envelope.id);
    t.equal(mine?.data.receiptNumber, r.number, 'the message carries the number the statement took');
    const again = await db.transaction().execute((trx) =>
      issueReceipt(trx, first, 'again', {
        exchange: 'notifications',
        routingKey: 'billing.payment.completed',
        envelope,
      }),
    );
    t.equal(again.id, r.id, 'issued once');
    t.equal(
      (await db.selectFrom('outbox').select('id').execute()).filter((q) => q).length,
      queued.length,
      'a repeat queues nothing',
    );
    await sql`update document_counters set last = 999999 where kind = 'R' and currency = 'NOK'`.execute(db);
    const big = await db.transaction().execute(async (trx) => issueReceipt(trx, await payment('NOK'), 'big'));
    t.equal(big.number, `R-${year}-NOK-1000000`);
    t.equal(big.sequence, 1000000);
  },
);

t.test('a batch of receipts: one counter bump per currency at the end, numbered in the order added', async (t) => {
  const { ReceiptBatch } = await import('../src/index.js');
  const year = new Date().getUTCFullYear();
  const first = await db.transaction().execute(async (trx) => issueReceipt(trx, await payment('DKK'), 'before'));
  t.equal(first.number, `R-${year}-DKK-000001`);
  const pays = [await payment('DKK'), await payment('PLN'), await payment('DKK'), await payment('DKK')];
  const message = (p: { id: string }) => ({
    exchange: 'notifications',
    routingKey: 'billing.payment.completed',
    envelope: {
      id: randomUUID(),
      type: 'payment.completed',
      version: 1 as const,
      occurredAt: new Date().toISOString(),
      correlationId: randomUUID(),
      data: { paymentId: p.id, receiptNumber: '' },
    },
  });
  const batch = new ReceiptBatch();
  const messages = pays.map(message);
  pays.forEach((p, i) => batch.add(p, `item ${i}`, messages[i]!));
  t.equal(batch.size, 4);
  const numbers = await db.transaction().execute((trx) => batch.issue(trx));
  t.same(
    pays.map((p) => numbers.get(p.id)),
    [`R-${year}-DKK-000002`, `R-${year}-PLN-000001`, `R-${year}-DKK-000003`, `R-${year}-DKK-000004`],
  );
  const rows = await db
    .selectFrom('receipts')
    .selectAll()
    .where(
      'payment_id',
      'in',
      pays.map((p) => p.id),
    )
    .execute();
  t.same(
    pays.map((p) => rows.find((r) => r.payment_id === p.id)?.description),
    ['item 0', 'item 1', 'item 2', 'item 3'],
    'each receipt its own description',
  );
  const queued = (await db.selectFrom('outbox').select('envelope').execute()).map(
    (q) => q.envelope as { id: string; data: { paymentId: string; receiptNumber: string } },
  );
  for (const [i, p] of pays.entries())
    t.equal(
      queued.find((e) => e.id === messages[i]!.envelope.id)?.data.receiptNumber,
      numbers.get(p.id),
      'its message carries its number',
    );
  // A payment with a receipt already: the whole statement fails, and no number is used.
  const again = new ReceiptBatch();
  again.add(pays[0]!, 'twice', message(pays[0]!));
  again.add(await payment('DKK'), 'fresh', message(pays[0]!));
  await t.rejects(db.transaction().execute((trx) => again.issue(trx)));
  const next = await db.transaction().execute(async (trx) => issueReceipt(trx, await payment('DKK'), 'after'));
  t.equal(next.number, `R-${year}-DKK-000005`, 'the failed batch took no number');
});
