import t from 'tap';
import pg from 'pg';
import { createDb } from '@billing/db';
import { pgBinDir, startPgCluster, waitFor } from '@billing/testing';
import { brokenInvariants } from '../../src/invariants.js';
import { approveInBrowser, startStack } from '../../src/stack.js';

// docs/guarantees.md, Postgres failover: a primary and a synchronous streaming replica of this
// machine's PostgreSQL (private ports, never the shared server), every app given both hosts with
// target_session_attrs=read-write. During purchases and renewals the primary is stopped as in a
// crash and the replica promoted: every purchase completes once, no capture without its payment,
// no period paid twice, and the same app processes run throughout.
if (!pgBinDir()) {
  // No silent pass: PostgreSQL's server programs are what .ci/run installs or finds.
  t.fail('PostgreSQL server programs (initdb, pg_ctl, pg_basebackup) not found under /usr/lib/postgresql');
} else {
  const cluster = await startPgCluster();
  t.teardown(() => cluster.stop());
  const admin = new pg.Client({ connectionString: cluster.primaryUrl('postgres') });
  await admin.connect();
  await admin.query('create database billing_failover');
  await admin.end();
  const url = `postgres://postgres@${cluster.hosts}/billing_failover?target_session_attrs=read-write`;
  const db = createDb(url, { max: 4, applicationName: 'test' });
  const stack = await startStack(
    { SCHEDULER_INTERVAL_MS: '500', RENEWAL_LEAD_MS: '2000', RECONCILE_AFTER_MS: '1500' },
    {
      database: { url, db, drop: () => db.destroy() },
      plans: [
        {
          id: 'failover-short',
          name: 'Failover',
          description: 'short periods',
          amount: 300,
          currency: 'USD',
          period: 'PT10S',
          role: 'failover-role',
          active: true,
        },
      ],
    },
  );
  t.teardown(async () => {
    await stack.stop();
    await db.destroy();
  });

  const answers = new Map<string, number>();
  /** A buyer's checkout, sent again (same Idempotency-Key) while the database is away, as a client should. */
  const buy = async (userId: string) => {
    const token = await stack.tokenFor(userId);
    for (const deadline = Date.now() + 90_000; ; ) {
      const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': `failover-${userId}`,
        },
        body: JSON.stringify({ planId: 'failover-short' }),
      }).catch(() => undefined);
      const status = res?.status ?? 0;
      answers.set(String(status), (answers.get(String(status)) ?? 0) + 1);
      const body = (await res?.json().catch(() => ({}))) as Record<string, string>;
      if (status === 201)
        return { userId, subscriptionId: body['subscriptionId']!, paymentId: body['paymentId']!, body };
      if (Date.now() > deadline) throw new Error(`checkout of ${userId}: still ${status} ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const statusOf = async (ids: string[]) =>
    (await db.selectFrom('subscriptions').select('status').where('id', 'in', ids).execute()).map((r) => r.status);

  t.test(
    'the primary lost during purchases and renewals, the replica promoted: nothing twice, nothing lost',
    async (t) => {
      const pids = [...stack.processes.values()].map((p) => p.child.pid);
      // Renewing subscriptions (10-second periods) before the failover.
      const renewing: Awaited<ReturnType<typeof buy>>[] = [];
      for (let i = 0; i < 4; i++) {
        const b = await buy(`failover-renew-${i}`);
        await approveInBrowser(b.body['approvalUrl']!);
        renewing.push(b);
      }
      await waitFor(async () => (await statusOf(renewing.map((b) => b.subscriptionId))).every((s) => s === 'active'), {
        what: 'the renewing subscriptions active',
        timeoutMs: 60_000,
        intervalMs: 300,
      });
      // A burst of purchases; the primary is stopped (as a crash) after the fifth, the replica promoted 3 s later.
      const bought: Awaited<ReturnType<typeof buy>>[] = [];
      let promotedAt = 0;
      let promoting: Promise<void> | undefined;
      for (let i = 0; i < 14; i++) {
        if (i === 5) {
          await cluster.primary.ctl('-m', 'immediate', 'stop');
          t.comment('primary stopped');
          promoting = new Promise((r) => setTimeout(r, 3_000)).then(async () => {
            await cluster.replica.ctl('-w', 'promote');
            promotedAt = Date.now();
            t.comment('replica promoted');
          });
        }
        const b = await buy(`failover-${i}`);
        await approveInBrowser(b.body['approvalUrl']!);
        bought.push(b);
      }
      await promoting;
      const all = [...renewing, ...bought];
      await waitFor(async () => (await statusOf(all.map((b) => b.subscriptionId))).every((s) => s === 'active'), {
        what: 'every purchase active',
        timeoutMs: 120_000,
        intervalMs: 500,
      });
      t.comment(`checkout answers: ${JSON.stringify(Object.fromEntries(answers))}`);
      // Renewals go on on the new primary: a period of each renewing subscription paid after the promotion.
      await waitFor(
        async () => {
          const paid = await db
            .selectFrom('payments')
            .select('subscription_id')
            .where(
              'subscription_id',
              'in',
              renewing.map((b) => b.subscriptionId),
            )
            .where('kind', '=', 'renewal')
            .where('status', '=', 'completed')
            .where('period_start', '>', new Date(promotedAt))
            .execute();
          return new Set(paid.map((p) => p.subscription_id)).size === renewing.length;
        },
        { what: 'a renewal of each paid after the promotion', timeoutMs: 60_000, intervalMs: 500 },
      );
      const captures = (await stack.paypal('/_control/captures')) as { customId: string }[];
      for (const b of all)
        t.equal(captures.filter((c) => c.customId === b.paymentId).length, 1, `${b.paymentId}: captured once`);
      await waitFor(
        async () => {
          const roles = await Promise.all(
            all.map(async (b) =>
              (((await stack.auth(`/_control/users/${b.userId}`)).roles ?? []) as string[]).includes('failover-role'),
            ),
          );
          return roles.every(Boolean);
        },
        { what: 'every role granted', timeoutMs: 60_000 },
      );
      t.same(
        [...stack.processes.values()].map((p) => p.child.pid),
        pids,
        'the same app processes throughout: none restarted',
      );
      t.same([...stack.processes.values()].filter((p) => p.child.exitCode !== null).length, 0, 'none exited');
      // Renewals stopped (each set to end at its period end) and the system quiet, so no charge is
      // in flight while PayPal's side and ours are compared.
      for (const b of renewing) {
        const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions/${b.subscriptionId}/cancel`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await stack.tokenFor(b.userId)}`, 'content-type': 'application/json' },
          body: JSON.stringify({ mode: 'at_period_end' }),
        });
        t.equal(res.status, 200, 'renewals stopped');
      }
      await stack.quiet({ timeoutMs: 60_000 });
      const broken = await brokenInvariants(stack);
      t.same(broken, [], 'PayPal, the Auth service and the database agree');
      // What a failure needs to be read: the payment behind each capture named.
      if (broken.length) {
        const named = (await stack.paypal('/_control/captures')) as { id: string; customId: string }[];
        for (const c of named.filter((c) => broken.some((b) => b.includes(c.id))))
          t.comment(
            JSON.stringify({
              capture: c,
              payment: await db.selectFrom('payments').selectAll().where('id', '=', c.customId).executeTakeFirst(),
            }),
          );
      }
    },
  );
}
