import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { startStack } from '../src/stack.js';

// docs/api.md (`GET /v1/payments/:id/receipt`), receipts and credit notes, through the real processes: numbered without gaps
// per currency and year under 50 payments completing at once, announced, served as HTML and PDF
// to the owner only.
const stack = await startStack();
t.teardown(() => stack.stop());
const db = stack.tdb.db;
const API = stack.urls['billing-api'];
const year = new Date().getUTCFullYear();

async function checkout(userId: string, planId = 'pro-monthly') {
  const token = await stack.tokenFor(userId);
  const res = await fetch(`${API}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId }),
  });
  const body = (await res.json()) as { subscriptionId: string; paymentId: string; approvalUrl: string };
  return { token, ...body, orderId: new URL(body.approvalUrl).searchParams.get('token')! };
}
const get = (path: string, token: string, accept = 'text/html') =>
  fetch(`${API}${path}`, { headers: { authorization: `Bearer ${token}`, accept } });

t.test('50 payments completing at once: receipts R-<year>-USD-000001 … 000050, no gap, no repeat', async (t) => {
  const buyers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => checkout(`user-r${String(i).padStart(2, '0')}`)),
  );
  // Released together: the approvals (and so the captures and their transactions) overlap.
  await Promise.all(buyers.map((b) => stack.paypal(`/_control/orders/${b.orderId}/approve`, {})));
  await waitFor(
    async () =>
      (
        await db
          .selectFrom('payments')
          .select('id')
          .where(
            'id',
            'in',
            buyers.map((b) => b.paymentId),
          )
          .where('status', '=', 'completed')
          .execute()
      ).length === 50,
    { what: 'fifty payments completed', timeoutMs: 60_000 },
  );
  const receipts = await db
    .selectFrom('receipts')
    .selectAll()
    .where('kind', '=', 'receipt')
    .where('currency', '=', 'USD')
    .orderBy('sequence')
    .execute();
  t.same(
    receipts.map((r) => r.sequence),
    Array.from({ length: 50 }, (_, i) => i + 1),
    'sequences 1 to 50, no gap',
  );
  t.same(
    receipts.map((r) => r.number),
    receipts.map((r) => `R-${year}-USD-${String(r.sequence).padStart(6, '0')}`),
  );
  t.same(new Set(receipts.map((r) => r.payment_id)), new Set(buyers.map((b) => b.paymentId)), 'one for each payment');
  const notes = (await stack.notifications()).filter((n) => n.type === 'payment.completed');
  const byPayment = new Map(notes.map((n) => [n.data['paymentId'], n.data]));
  for (const r of receipts.slice(0, 5))
    t.match(byPayment.get(r.payment_id), {
      receiptNumber: r.number,
      receiptUrl: `${API}/v1/payments/${r.payment_id}/receipt`,
      kind: 'initial',
      amount: 999,
      currency: 'USD',
    });
  t.equal(notes.length, 50, 'payment.completed for each');
});

t.test('the receipt: HTML or PDF for its owner, 404 for anyone else; its own series per currency', async (t) => {
  const eur = await checkout('user-euro', 'team-monthly');
  await stack.paypal(`/_control/orders/${eur.orderId}/approve`, {});
  const receipt = await waitFor(
    () => db.selectFrom('receipts').selectAll().where('payment_id', '=', eur.paymentId).executeTakeFirst(),
    { what: 'the EUR receipt' },
  );
  t.equal(receipt.number, `R-${year}-EUR-000001`, 'EUR numbers start at 1');
  const html = await get(`/v1/payments/${eur.paymentId}/receipt`, eur.token);
  t.equal(html.status, 200);
  t.match(html.headers.get('content-type'), /text\/html/);
  const text = await html.text();
  t.match(text, receipt.number);
  t.match(text, '29.00 EUR');
  const pdf = await get(`/v1/payments/${eur.paymentId}/receipt`, eur.token, 'application/pdf');
  t.equal(pdf.headers.get('content-type'), 'application/pdf');
  t.equal(
    Buffer.from(await pdf.arrayBuffer())
      .subarray(0, 5)
      .toString(),
    '%PDF-',
  );
  const other = await stack.tokenFor('user-snoop');
  t.equal((await get(`/v1/payments/${eur.paymentId}/receipt`, other)).status, 404, "another user's receipt");
  const pending = await checkout('user-not-yet');
  t.equal(
    (await get(`/v1/payments/${pending.paymentId}/receipt`, pending.token)).status,
    404,
    'no receipt before completion',
  );
});

t.test('a refund gets a credit note, C-<year>-USD-000001, announced and listed on the receipt', async (t) => {
  const b = await checkout('user-refundee');
  await stack.paypal(`/_control/orders/${b.orderId}/approve`, {});
  await waitFor(
    async () =>
      (
        await db
          .selectFrom('subscriptions')
          .select('status')
          .where('id', '=', b.subscriptionId)
          .executeTakeFirstOrThrow()
      ).status === 'active',
    { what: 'active' },
  );
  const cancel = await fetch(`${API}/v1/subscriptions/${b.subscriptionId}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${b.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'immediately' }),
  });
  t.equal(cancel.status, 200);
  const note = await waitFor(
    () =>
      db
        .selectFrom('receipts')
        .selectAll()
        .where('payment_id', '=', b.paymentId)
        .where('kind', '=', 'credit_note')
        .executeTakeFirst(),
    { what: 'the credit note', timeoutMs: 20_000 },
  );
  t.equal(note.number, `C-${year}-USD-000001`);
  const refunded = (await stack.notifications()).filter(
    (n) => n.type === 'payment.refunded' && n.data['paymentId'] === b.paymentId,
  );
  t.same(
    refunded.map((n) => n.data['creditNoteNumber']),
    [note.number],
  );
  const html = await (await get(`/v1/payments/${b.paymentId}/receipt`, b.token)).text();
  t.match(html, note.number, 'the receipt lists its credit note');
  await stack.quiet();
  t.same(await brokenInvariants(stack), []);
});
