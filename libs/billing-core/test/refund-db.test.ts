import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { payments, refundAnswered, refundToSend, requestRefund, type RefundRefusal } from '../src/index.js';
import { firstPayment, MONTHLY, testContext } from './fixtures.js';

// The use case "send a refund we recorded to PayPal" (docs/architecture.md, use cases) against a
// real, migrated database: the call decided, and each of PayPal's answers recorded once.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [MONTHLY]);
const { ctx, errors: logged } = testContext();

/** A paid first payment (captured unless `captured` is false) and a refund of `amount` requested on it. */
async function refundOf(amount: number, captured = true) {
  const { paymentId } = await firstPayment(db, captured ? 'completed' : 'pending');
  const refundId = await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: paymentId }))!;
    return requestRefund(trx, p, amount, 'operator', 'asked by the buyer', 'op@example.com');
  });
  return { paymentId, refundId };
}
const refundRow = (id: string) => db.selectFrom('refunds').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const paymentRow = (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

t.test('a refund sent: the call keyed for retries; COMPLETED recorded once with its credit note', async (t) => {
  const r = await refundOf(900);
  t.same(await refundToSend(db, r.refundId), {
    captureId: `cap-${r.paymentId}`,
    amount: 900,
    currency: 'EUR',
    refundId: r.refundId,
    idempotencyKey: `${r.refundId}:refund`,
  });
  t.equal(
    await refundAnswered(ctx, db, r.refundId, { id: 'RF-1', status: 'COMPLETED', amount: 900, currency: 'EUR' }),
    'refund COMPLETED',
  );
  t.match(await refundRow(r.refundId), { status: 'completed', provider_refund_id: 'RF-1' });
  t.match(await paymentRow(r.paymentId), { status: 'refunded' });
  t.equal(
    (await db.selectFrom('receipts').select('kind').where('payment_id', '=', r.paymentId).execute()).filter(
      (x) => x.kind === 'credit_note',
    ).length,
    1,
    'a credit note',
  );
  t.equal(
    await refundAnswered(ctx, db, r.refundId, { id: 'RF-1', status: 'COMPLETED', amount: 900, currency: 'EUR' }),
    'no-op',
    'twice: nothing',
  );
  t.equal(await refundToSend(db, r.refundId), 'no-op', 'not sent again');
  t.equal(await refundToSend(db, randomUUID()), 'no-op');
});

t.test('PENDING waits for the webhook; a refusal fails with PayPal reason; no capture fails at once', async (t) => {
  const pending = await refundOf(300);
  t.equal(
    await refundAnswered(ctx, db, pending.refundId, { id: 'RF-2', status: 'PENDING', amount: 300, currency: 'EUR' }),
    'refund PENDING',
  );
  t.match(await refundRow(pending.refundId), { status: 'pending', provider_refund_id: 'RF-2' });
  t.match(await paymentRow(pending.paymentId), { status: 'completed' }, 'the money not yet back');

  const refused = await refundOf(300);
  const refusal: RefundRefusal = Object.assign(new Error('refused'), { status: 422, issue: 'CAPTURE_FULLY_REFUNDED' });
  t.equal(await refundAnswered(ctx, db, refused.refundId, refusal), 'refused');
  t.match(await refundRow(refused.refundId), { status: 'failed', failure_reason: '422 CAPTURE_FULLY_REFUNDED' });
  t.ok(logged.includes('PayPal refused a refund'));

  const uncaptured = await refundOf(300, false);
  t.equal(await refundToSend(db, uncaptured.refundId), 'failed: no capture');
  t.match(await refundRow(uncaptured.refundId), { status: 'failed', failure_reason: 'no capture to refund' });
});
