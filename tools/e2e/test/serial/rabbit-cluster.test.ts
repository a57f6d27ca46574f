import t from 'tap';
import { canStartRabbitNode, startRabbitCluster, waitFor } from '@billing/testing';
import { brokenInvariants } from '../../src/invariants.js';
import { approveInBrowser, checkout, startStack } from '../../src/stack.js';

// README "Operating": a RabbitMQ node dies and nothing is lost. A three-node cluster of this
// machine's own RabbitMQ (private nodes started by the test, never the shared broker), every app
// given all three addresses in AMQP_URL; during a burst of purchases the node that leads the
// queues is stopped: every purchase completes exactly once, and no app is restarted.
if (!(await canStartRabbitNode())) {
  // No silent pass: .ci/run installs rabbitmq-server when it is absent.
  t.fail(
    'rabbitmq-server cannot start a node here: install it (.ci/run does); the cluster test starts nodes of its own',
  );
} else {
  const cluster = await startRabbitCluster(3);
  t.teardown(() => cluster.stop());
  const second = cluster.nodes[1];
  // The apps list the first node first, so they connect and declare their queues there (and the
  // quorum queues' leaders start there); the stack's own checks go through the second.
  const stack = await startStack({}, { amqp: { urls: cluster.urls, adminUrl: second!.url } });
  t.teardown(() => stack.stop());

  const buy = (userId: string) => checkout(stack, userId);
  const statusOf = async (ids: string[]) =>
    (await stack.tdb.db.selectFrom('subscriptions').select('status').where('id', 'in', ids).execute()).map(
      (r) => r.status,
    );

  t.test(
    'the node leading the queues stopped during a burst of purchases: each completes once, no app restarted',
    async (t) => {
      const leaders = await second!.ctl('list_queues', 'name', 'leader', '--formatter', 'json');
      const leaderOf = Object.fromEntries(
        (JSON.parse(leaders) as { name: string; leader: string }[]).map((q) => [q.name, q.leader]),
      );
      const victim = cluster.nodes.find((n) => n.name === leaderOf['billing.payment-worker']);
      t.ok(victim, `the payment-worker queue is led by ${leaderOf['billing.payment-worker']}`);
      t.not(victim, second, "the node stopped is not the one the test's own checks use");
      const pids = [...stack.processes.values()].map((p) => p.child.pid);

      const buyers = await Promise.all(Array.from({ length: 16 }, (_, i) => buy(`cluster-${i}`)));
      const started = Date.now();
      let stoppedAt = 0;
      for (const [i, b] of buyers.entries()) {
        if (i === 5) {
          await victim!.ctl('stop'); // the whole node, not only the app: as a machine lost
          stoppedAt = Date.now();
        }
        await approveInBrowser(b.approvalUrl);
      }
      const late = await buy('cluster-late'); // a checkout after the node died
      await approveInBrowser(late.approvalUrl);
      const all = [...buyers, late];
      await waitFor(async () => (await statusOf(all.map((b) => b.subscriptionId))).every((s) => s === 'active'), {
        what: 'every purchase active',
        timeoutMs: 120_000,
        intervalMs: 500,
      });
      t.comment(
        `${all.length} purchases active ${Date.now() - started} ms after the first approval; ` +
          `${leaderOf['billing.payment-worker']} stopped ${stoppedAt - started} ms in`,
      );
      const captures = (await stack.paypal('/_control/captures')) as { customId: string }[];
      for (const b of all)
        t.equal(captures.filter((c) => c.customId === b.paymentId).length, 1, `${b.paymentId}: one capture`);
      await waitFor(
        async () => {
          const roles = await Promise.all(
            all.map(async (_, i) =>
              (
                ((await stack.auth(`/_control/users/${i < 16 ? `cluster-${i}` : 'cluster-late'}`)).roles ??
                  []) as string[]
              ).includes('premium'),
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
      t.same(await brokenInvariants(stack), []);
    },
  );
}
