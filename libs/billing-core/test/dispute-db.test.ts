import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import type { DisputeSeen } from '@billing/payments';
import {
  disputeActionAnswered,
  disputeActionToSend,
  onPaymentEvent,
  openDispute,
  refundAnswered,
  refundToSend,
  requestDisputeAction,
  requestRefund,
} from '../src/index.js';
import { firstPayment, MONTHLY, testContext } from './fixtures.js';

// The use case "a buyer disputes a payment at PayPal" (docs/disputes.md) against a real, migrated
// database: disputes kept as PayPal last showed them, refunds held while one is open, a lost one
// handled as a chargeback, and the operators' answers.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [MONTHLY]);
const { ctx } = testContext();

let seq = 0;
/** A dispute of `captureId` as PayPal's CUSTOMER.DISPUTE.* webhooks show it. */
const dispute = (captureId: string, over: Partial<DisputeSeen> = {}): DisputeSeen => ({
  disputeId: `PP-D-${++seq}`,
  captureIds: [captureId],
  amount: 900,
  currency: 'EUR',
  reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
  status: 'OPEN',
  stage: 'INQUIRY',
  outcome: null,
  updatedAt: new Date(Date.UTC(2026, 11, 1, 10, 0, seq)).toISOString(),
  ...over,
});
const apply = (d: DisputeSeen) =>
  db.transaction().execute((trx) => onPaymentEvent(ctx, trx, { kind: 'dispute_changed', dispute: d }));
const later = (d: DisputeSeen, s: number) => new Date(Date.parse(d.updatedAt!) + s * 1000).toISOString();
const row = {
  dispute: (id: string) =>
    db.selectFrom('disputes').selectAll().where('provider_dispute_id', '=', id).executeTakeFirstOrThrow(),
  payment: (id: string) => db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
  sub: (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
  refunds: (paymentId: string) => db.selectFrom('refunds').selectAll().where('payment_id', '=', paymentId).execute(),
  grants: (subId: string) => db.selectFrom('role_grants').selectAll().where('subscription_id', '=', subId).execute(),
  outbox: (type: string) => db.selectFrom('outbox').selectAll().where('type', '=', type).execute(),
};
const refundOf = (paymentId: string, amount = 300) =>
  db.transaction().execute((trx) => requestRefund(trx, { id: paymentId, currency: 'EUR' }, amount, 'user_cancel', 't'));

t.test('a dispute that names no capture of ours is ignored', async (t) => {
  t.same(await apply(dispute('CAP-nobody')), { paymentId: null, outcome: 'dispute names no capture of ours' });
  t.equal((await db.selectFrom('disputes').select('id').execute()).length, 0);
});

t.test('opened, updated out of order, won: refunds held while it is open, then sent', async (t) => {
  const c = await firstPayment(db, 'completed');
  const d = dispute(`cap-${c.paymentId}`, { captureIds: ['CAP-other', `cap-${c.paymentId}`] });
  t.same(await apply(d), { paymentId: c.paymentId, outcome: 'dispute opened' });
  t.match(await row.dispute(d.disputeId), {
    payment_id: c.paymentId,
    capture_id: `cap-${c.paymentId}`,
    amount: 900,
    status: 'OPEN',
    stage: 'INQUIRY',
    result: 'open',
    resolved_at: null,
  });
  t.ok(await openDispute(db, c.paymentId));

  // A refund of ours while the dispute is open is held: PayPal is not asked.
  const refundId = await refundOf(c.paymentId);
  t.equal(await refundToSend(db, refundId), 'held: disputed');
  t.match((await row.refunds(c.paymentId))[0], { status: 'requested' });

  const updated = { ...d, status: 'UNDER_REVIEW', stage: 'CHARGEBACK', updatedAt: later(d, 60) };
  t.same(await apply(updated), { paymentId: c.paymentId, outcome: 'dispute updated' });
  // The CREATED event delivered again after the update: older, it changes nothing.
  t.same(await apply(d), { paymentId: c.paymentId, outcome: 'no-op: older than what we hold' });
  t.match(await row.dispute(d.disputeId), { status: 'UNDER_REVIEW', stage: 'CHARGEBACK' });

  const queued = (await row.outbox('payment.refund.requested')).length;
  const won = { ...updated, status: 'RESOLVED', outcome: 'RESOLVED_SELLER_FAVOUR', updatedAt: later(d, 120) };
  t.same(await apply(won), { paymentId: c.paymentId, outcome: 'dispute won; 1 held refund(s) sent' });
  t.match(await row.dispute(d.disputeId), { result: 'won', outcome: 'RESOLVED_SELLER_FAVOUR' });
  t.ok((await row.dispute(d.disputeId)).resolved_at);
  t.equal((await row.outbox('payment.refund.requested')).length, queued + 1, 'the held refund asked for again');
  t.match(await refundToSend(db, refundId), { refundId, captureId: `cap-${c.paymentId}`, amount: 300 });
  // A resolution is final: the same event again, or a later update, changes nothing.
  t.same(await apply(won), { paymentId: c.paymentId, outcome: 'no-op: older than what we hold' });
  t.same(await apply({ ...updated, updatedAt: later(d, 500) }), {
    paymentId: c.paymentId,
    outcome: 'no-op: older than what we hold',
  });
  t.match(await row.payment(c.paymentId), { status: 'completed' });
  t.match(await row.sub(c.subId), { status: 'active' });
});

t.test('lost: the payment reversed, the subscription cancelled, the role gone, held refunds failed', async (t) => {
  const c = await firstPayment(db, 'completed');
  const d = dispute(`cap-${c.paymentId}`);
  await apply(d);
  const refundId = await refundOf(c.paymentId);
  const lost = { ...d, status: 'RESOLVED', outcome: 'RESOLVED_BUYER_FAVOUR', updatedAt: later(d, 60) };
  t.same(await apply(lost), {
    paymentId: c.paymentId,
    outcome: 'dispute lost; payment reversed; subscription cancelled',
  });
  t.match(await row.payment(c.paymentId), { status: 'reversed' });
  t.match(await row.sub(c.subId), { status: 'cancelled' });
  t.ok(
    (await row.grants(c.subId)).every((g) => g.ended_at !== null),
    'the grant ended',
  );
  t.match(await row.refunds(c.paymentId), [
    { id: refundId, status: 'failed', failure_reason: 'the dispute returned the money' },
  ]);
  t.equal(await openDispute(db, c.paymentId), undefined);
  // PayPal's reversal of the same capture afterwards changes nothing more.
  t.match(
    await db.transaction().execute((trx) =>
      onPaymentEvent(ctx, trx, {
        kind: 'capture_reversed',
        captureId: `cap-${c.paymentId}`,
        refundId: 'R-9',
        amount: 900,
        currency: 'EUR',
      }),
    ),
    { paymentId: c.paymentId, outcome: 'no-op' },
  );
});

t.test('a claim accepted (ACCEPTED) is lost too', async (t) => {
  const c = await firstPayment(db, 'completed');
  const d = dispute(`cap-${c.paymentId}`);
  await apply(d);
  t.match(await apply({ ...d, status: 'RESOLVED', outcome: 'ACCEPTED', updatedAt: later(d, 1) }), {
    outcome: /^dispute lost; payment reversed/,
  });
  t.match(await row.dispute(d.disputeId), { result: 'lost' });
});

t.test('PayPal refuses a refund because of a dispute: held while the dispute is open, failed otherwise', async (t) => {
  const c = await firstPayment(db, 'completed');
  const first = await refundOf(c.paymentId, 100);
  const refusal = (issue: string) => Object.assign(new Error('refused'), { status: 422, issue });
  // No dispute known: PayPal's refusal fails the refund.
  t.equal(await refundAnswered(ctx, db, first, refusal('REFUND_NOT_ALLOWED')), 'refused');
  const d = dispute(`cap-${c.paymentId}`, { stage: 'CHARGEBACK' });
  await apply(d);
  const second = await refundOf(c.paymentId, 100);
  t.equal(await refundAnswered(ctx, db, second, refusal('REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK')), 'held: disputed');
  t.match(await row.refunds(c.paymentId), [
    { id: first, status: 'failed' },
    { id: second, status: 'requested' },
  ]);
});

t.test("operators' answers: one at a time, sent once, none after the resolution", async (t) => {
  const c = await firstPayment(db, 'completed');
  const d = dispute(`cap-${c.paymentId}`);
  await apply(d);
  const { id } = await row.dispute(d.disputeId);
  const ask = (action: 'accept_claim' | 'provide_evidence', note = 'delivered on time') =>
    db.transaction().execute((trx) => requestDisputeAction(trx, id, action, note, 'op-1'));

  const evidence = await ask('provide_evidence', 'The buyer used the service 14 times.');
  t.match(evidence, { dispute_id: id, action: 'provide_evidence', status: 'requested', requested_by: 'op-1' });
  if (typeof evidence === 'string') throw new Error(evidence);
  t.equal(await ask('accept_claim'), 'dispute-action-pending');
  const outbox = await row.outbox('payment.dispute.action.requested');
  t.ok(
    outbox.some((o) => JSON.stringify(o.envelope).includes(evidence.id)),
    'asked of the payment-worker',
  );

  t.same(await disputeActionToSend(db, evidence.id), {
    action: 'provide_evidence',
    disputeId: d.disputeId,
    note: 'The buyer used the service 14 times.',
    idempotencyKey: `${evidence.id}:dispute`,
  });
  t.equal(await disputeActionAnswered(db, evidence.id, null), 'sent');
  t.equal(await disputeActionAnswered(db, evidence.id, null), 'no-op', 'a redelivery records nothing more');
  t.equal(await disputeActionToSend(db, evidence.id), 'no-op');

  const accept = await ask('accept_claim');
  if (typeof accept === 'string') throw new Error(accept);
  t.equal(await disputeActionAnswered(db, accept.id, { status: 422, issue: 'ACTION_NOT_ALLOWED' }), 'refused');
  t.match(await db.selectFrom('dispute_actions').selectAll().where('id', '=', accept.id).executeTakeFirstOrThrow(), {
    status: 'refused',
    failure_reason: '422 ACTION_NOT_ALLOWED',
  });

  await apply({ ...d, status: 'RESOLVED', outcome: 'RESOLVED_SELLER_FAVOUR', updatedAt: later(d, 5) });
  t.equal(await ask('accept_claim'), 'dispute-resolved');
  t.equal(
    await db
      .transaction()
      .execute((trx) => requestDisputeAction(trx, '00000000-0000-4000-8000-000000000000', 'accept_claim', 'x', null)),
    'not-found',
  );
  await t.rejects(
    db.deleteFrom('disputes').where('id', '=', id).execute(),
    /refuse|delete/i,
    'a dispute is never deleted',
  );
});

t.test('five answers to one dispute released at once: one recorded, the others told one waits', async (t) => {
  const c = await firstPayment(db, 'completed');
  const d = dispute(`cap-${c.paymentId}`);
  await apply(d);
  const { id } = await row.dispute(d.disputeId);
  for (let round = 0; round < 5; round++) {
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        db.transaction().execute((trx) => requestDisputeAction(trx, id, 'provide_evidence', `round ${round}`, 'op')),
      ),
    );
    const recorded = answers.filter((a) => typeof a !== 'string');
    t.equal(recorded.length, 1, `round ${round}: one answer recorded`);
    t.equal(answers.filter((a) => a === 'dispute-action-pending').length, 4);
    await disputeActionAnswered(db, (recorded[0] as { id: string }).id, null);
  }
  t.equal(
    (await db.selectFrom('dispute_actions').select('id').where('dispute_id', '=', id).execute()).length,
    5,
    'one per round, all sent',
  );
});
