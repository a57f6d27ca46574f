import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../../src/invariants.js';
import { approveAtRate, capturesOf, checkouts, grantedAt, quantile, workerRetries } from '../../src/load.js';
import { startStack } from '../../src/stack.js';

// docs/guarantees.md, backpressure: past its capacity the pipeline queues, it does not livelock.
// The pipeline is made small on purpose (4 connections per app, PayPal answering captures in
// 300 ms), its capacity is measured here (a burst of approvals, timed to the last role granted),
// and then it is driven at twice that for 60 s while subscriptions of a 20-second plan renew. The
// backlog must drain within 2 minutes of the last approval: every buyer active with the role,
// each order captured once, each period paid once, nothing sent round a retry queue.
const DRIVE_S = Number(process.env['OVERLOAD_SECONDS'] ?? 60);
const stack = await startStack(
  { DB_POOL_SIZE: '4', PAYPAL_TIMEOUT_MS: '10000', RENEWAL_LEAD_MS: '5000' },
  {
    plans: [
      {
        id: 'fast',
        name: 'Fast',
        description: 'renews every 20 s',
        amount: 300,
        currency: 'USD',
        period: 'PT20S',
        role: 'fast',
        active: true,
      },
      {
        id: 'steady',
        name: 'Steady',
        description: 'renews monthly: not during the test',
        amount: 300,
        currency: 'USD',
        period: 'P1M',
        role: 'fast',
        active: true,
      },
    ],
  },
);
t.teardown(() => stack.stop());

/** Where the buyers without their role are: their subscriptions' and payments' states, their webhooks. */
async function whereStuck(users: Set<string>, buyers: { userId: string; orderId: string }[]): Promise<string> {
  const granted = await grantedAt(stack, users);
  const stuck = [...users].filter((u) => !granted.has(u));
  if (!stuck.length) return 'none stuck';
  const db = stack.tdb.db;
  const subs = await db
    .selectFrom('subscriptions')
    .select(['user_id', 'status'])
    .where('user_id', 'in', stuck)
    .execute();
  const pays = await db.selectFrom('payments').select(['user_id', 'status']).where('user_id', 'in', stuck).execute();
  const tally = (rows: { status: string }[]) =>
    JSON.stringify(rows.reduce<Record<string, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}));
  const grants = await db
    .selectFrom('role_grants')
    .select(['user_id', 'ended_at'])
    .where('user_id', 'in', stuck)
    .execute();
  const calls = ((await stack.auth('/_control/calls')) as { method: string; path: string; status: number }[]).filter(
    (c) => stuck.some((u) => c.path.includes(`/users/${u}/`)),
  );
  const first = buyers.find((b) => b.userId === stuck[0])!;
  const hooks = (
    (await stack.paypal('/_control/webhooks')) as { eventType: string; event: unknown; deliveries: unknown[] }[]
  )
    .filter((w) => JSON.stringify(w.event).includes(first.orderId))
    .map((w) => `${w.eventType} ${JSON.stringify(w.deliveries)}`);
  const order = ((await stack.paypal('/_control/calls')) as { path: string; status: number }[])
    .filter((c) => c.path.includes(first.orderId))
    .map((c) => `${c.path} ${c.status}`);
  return (
    `${first.userId}'s webhooks: ${JSON.stringify(hooks)}; its order's calls: ${JSON.stringify(order)}; ` +
    `${stuck.length} stuck (e.g. ${stuck.slice(0, 3).join(', ')}): subscriptions ${tally(subs)}, payments ${tally(pays)}, ` +
    `grants ${grants.length} (${grants.filter((g) => g.ended_at).length} ended), Auth calls ` +
    JSON.stringify(calls.slice(0, 6).map((c) => `${c.method} ${c.status}`))
  );
}

t.test('twice the pipeline’s capacity for 60 s: everything completes once within 2 minutes', async (t) => {
  await stack.paypal('/_control/behaviour', { delays: [{ match: '/capture', ms: 300 }] });
  t.teardown(() => stack.paypal('/_control/behaviour', { delays: [] }));

  // Capacity: a burst approved at once, timed from the first approval to the last role granted.
  const burst = await checkouts(stack, 'burst', 60, { planId: 'fast' });
  const burstUsers = new Set(burst.map((b) => b.userId));
  const burstStart = Date.now();
  await approveAtRate(stack, burst, 1_000);
  const burstGrants = await waitFor(
    async () => {
      const g = await grantedAt(stack, burstUsers);
      return g.size === burst.length ? g : null;
    },
    { what: 'the burst’s roles granted', timeoutMs: 120_000, intervalMs: 250 },
  );
  const capacity = (burst.length * 1000) / (Math.max(...burstGrants.values()) - burstStart);
  // OVERLOAD_RATE fixes the rate instead (to reproduce a run).
  const rate = Number(process.env['OVERLOAD_RATE'] ?? 0) || Math.max(2, Math.round(2 * capacity));
  const before = await workerRetries(stack);

  // Twice that, for DRIVE_S seconds, while the burst's subscriptions renew every 20 s.
  // The buyers of the drive take a monthly plan: the renewals meanwhile are the burst's, a steady
  // load. (Were they on the 20-second plan too, their renewals alone would come to three times the
  // rate of purchases by the end, past any capacity measured by purchases.)
  const checkoutStart = Date.now();
  const buyers = await checkouts(stack, 'over', rate * DRIVE_S, { planId: 'steady', parallel: 32 });
  t.comment(`${buyers.length} checkouts made in ${Date.now() - checkoutStart} ms before the drive`);
  const users = new Set(buyers.map((b) => b.userId));
  const driveStart = Date.now();
  const approvedAt = await approveAtRate(stack, buyers, rate);
  const driveEnd = Date.now();
  const grants = await (async () => {
    try {
      return await waitFor(
        async () => {
          const g = await grantedAt(stack, users);
          if (g.size === buyers.length) return g;
          // What a timeout reports: how far it got, and when the last grant came.
          const last = g.size ? Math.max(...g.values()) : driveStart;
          throw new Error(
            `${g.size} of ${buyers.length} granted, the last ${((Date.now() - last) / 1000).toFixed(1)} s ago`,
          );
        },
        {
          what: `${buyers.length} roles granted within 2 minutes of the last approval`,
          timeoutMs: 120_000,
          intervalMs: 1_000,
        },
      );
    } catch (err) {
      t.comment(await whereStuck(users, buyers));
      throw err;
    }
  })();
  const drained = (Math.max(...grants.values()) - driveEnd) / 1000;
  const lags = buyers.map((b) => grants.get(b.userId)! - approvedAt.get(b.userId)!);
  const after = await workerRetries(stack);
  t.comment(
    `capacity ${capacity.toFixed(1)} purchases/s (burst of ${burst.length}); driven at ${rate}/s for ` +
      `${((driveEnd - driveStart) / 1000).toFixed(0)} s (${buyers.length} buyers); drained ${drained.toFixed(1)} s after the ` +
      `last approval; approval → role p50 ${quantile(lags, 0.5)} ms, p99 ${quantile(lags, 0.99)} ms; ` +
      `retried ${after.retried - before.retried}, requeued ${after.requeued - before.requeued}`,
  );
  // What the apps warned of, when a message failed (their log level is warn unless E2E_LOG_LEVEL says otherwise).
  if (after.retried - before.retried > 0)
    for (const [name, proc] of stack.processes)
      for (const line of proc
        .output()
        .split('\n')
        .filter((l) => /warn|error/i.test(l))
        .slice(-15))
        t.comment(`${name}: ${line.slice(0, 700)}`);
  t.ok(drained <= 120, 'the backlog drained within 2 minutes of the last approval');
  t.equal(after.retried - before.retried, 0, 'no message failed: nothing went round a retry queue');
  t.equal(after.requeued - before.requeued, 0, 'no message sent back for want of a connection');

  // Renewals would go on for ever: the scheduler stops, and what it started settles.
  await stack.processes.get('scheduler')!.stop();
  await stack.quiet({ stableMs: 2_000, timeoutMs: 120_000 });
  const all = [...burst, ...buyers];
  const seen = await capturesOf(stack, all);
  t.equal(seen.capturedOrders, all.length, 'every order captured');
  t.equal(seen.capturedTwice, 0, 'no order captured twice');
  t.ok(seen.paidPeriods > all.length, `renewals ran meanwhile (${seen.paidPeriods - all.length} periods renewed)`);
  t.equal(seen.periodsPaidTwice, 0, 'no period paid twice');
  t.same(await brokenInvariants(stack), []);
});
