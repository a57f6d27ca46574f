import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { approveInBrowser, startStack } from '../src/stack.js';

// Issue 8's fault suite: each fault on a purchase through the real processes, then the
// invariant checker over what PayPal, the Auth service and the broker saw.
const stack = await startStack();
t.teardown(() => stack.stop());

const buy = async (userId: string) => {
  const token = await stack.tokenFor(userId);
  const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ planId: 'pro-monthly' }) });
  if (res.status !== 201) throw new Error(`checkout answered ${res.status}: ${await res.text()}`);
  return await res.json() as { subscriptionId: string; paymentId: string; approvalUrl: string };
};
const status = async (subscriptionId: string) => (await stack.tdb.db.selectFrom('subscriptions').select('status').where('id', '=', subscriptionId).executeTakeFirstOrThrow()).status;
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];
const capturesOf = async (paymentId: string) => ((await stack.paypal('/_control/captures')) as { customId: string }[]).filter((c) => c.customId === paymentId).length;
const recovery: string[] = [];
t.teardown(() => {
  if (recovery.length) t.comment(`recovery times:\n${recovery.join('\n')}`);
});

t.test('the same webhook delivered 50 times in parallel: one capture, one activation', async (t) => {
  const { subscriptionId, paymentId, approvalUrl } = await buy('fault-dup');
  await approveInBrowser(approvalUrl);
  await waitFor(async () => (await status(subscriptionId)) === 'active', { what: 'active', timeoutMs: 30_000 });
  const sent = (await stack.paypal('/_control/webhooks')) as { id: string; eventType: string; event: { resource: { id: string } } }[];
  const mine = sent.filter((w) => ['CHECKOUT.ORDER.APPROVED', 'PAYMENT.CAPTURE.COMPLETED'].includes(w.eventType));
  await Promise.all(mine.flatMap((w) => Array.from({ length: 50 }, () => stack.paypal(`/_control/webhooks/${w.id}/resend`, {}))));
  await waitFor(async () => Number((await stack.tdb.db.selectFrom('provider_events').select((eb) => eb.fn.countAll<string>().as('n')).where('processed_at', 'is', null).executeTakeFirstOrThrow()).n) === 0, { what: 'every event processed' });
  t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
  t.same(await brokenInvariants(stack), []);
});

t.test('a capture that succeeds at PayPal but whose answer is lost (timeout): retried with the same request id, one capture', async (t) => {
  await stack.paypal('/_control/behaviour', { delays: [{ match: '/capture', ms: 3_500 }] });
  const { subscriptionId, paymentId, approvalUrl } = await buy('fault-timeout');
  await approveInBrowser(approvalUrl);
  await waitFor(async () => ((await stack.paypal('/_control/captures')) as { customId: string }[]).some((c) => c.customId === paymentId), { what: 'the capture made at PayPal', timeoutMs: 20_000 });
  const lost = Date.now();
  await stack.paypal('/_control/behaviour', { delays: [] });
  await waitFor(async () => (await status(subscriptionId)) === 'active', { what: 'active after the lost answer', timeoutMs: 60_000 });
  recovery.push(`  capture answer lost: active ${Date.now() - lost} ms after PayPal answered in time again`);
  t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
  const calls = ((await stack.paypal('/_control/calls')) as { path: string; requestId: string | null }[]).filter((c) => c.path.endsWith('/capture'));
  t.ok(calls.length >= 2, `captured ${calls.length} times at the HTTP level`);
  t.equal(new Set(calls.filter((c) => c.requestId?.startsWith(paymentId)).map((c) => c.requestId)).size, 1, 'every try carried the same PayPal-Request-Id');
  t.same(await brokenInvariants(stack), []);
});

t.test('the payment-worker stopped (SIGTERM) during a slow PayPal call: exits 0 in time, hands the work back, a new worker finishes it once', async (t) => {
  // Longer than PAYPAL_TIMEOUT_MS (3 s here): each try times out, and the adapter would try three times.
  await stack.paypal('/_control/behaviour', { delays: [{ match: '/capture', ms: 20_000 }] });
  const { subscriptionId, paymentId, approvalUrl } = await buy('fault-sigterm');
  await approveInBrowser(approvalUrl);
  await waitFor(async () => ((await stack.paypal('/_control/held')) as string[]).some((k) => k.endsWith('/capture')), { what: 'the capture call in flight' });
  const worker = stack.processes.get('payment-worker')!;
  const stopping = Date.now();
  const code = await worker.stop('SIGTERM');
  const took = Date.now() - stopping;
  t.equal(code, 0, 'exit 0');
  t.ok(took < 10_000, `stopped in ${took} ms (SIGTERM grace 10 s)`);
  await stack.paypal('/_control/behaviour', { delays: [] });
  const started = Date.now();
  await stack.replica('payment-worker');
  await waitFor(async () => (await status(subscriptionId)) === 'active', { what: 'active through the new worker', timeoutMs: 60_000 });
  recovery.push(`  payment-worker SIGTERM mid-call: active ${Date.now() - started} ms after a new worker started (stop took ${took} ms)`);
  await waitFor(async () => (await rolesOf('fault-sigterm')).includes('premium'), { what: 'the role granted' });
  t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
  t.same(await brokenInvariants(stack), []);
});
