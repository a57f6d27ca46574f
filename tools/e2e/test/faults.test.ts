import amqplib from 'amqplib';
import { sql } from 'kysely';
import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { approveInBrowser, checkout, startStack } from '../src/stack.js';

// docs/guarantees.md's fault suite: each fault on a purchase through the real processes, then the
// invariant checker over what PayPal, the Auth service and the broker saw.
const stack = await startStack();
t.teardown(() => stack.stop());

const buy = (userId: string) => checkout(stack, userId);
const status = async (subscriptionId: string) =>
  (
    await stack.tdb.db
      .selectFrom('subscriptions')
      .select('status')
      .where('id', '=', subscriptionId)
      .executeTakeFirstOrThrow()
  ).status;
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];
const capturesOf = async (paymentId: string) =>
  ((await stack.paypal('/_control/captures')) as { customId: string }[]).filter((c) => c.customId === paymentId).length;
const recovery: string[] = [];
t.teardown(() => {
  if (recovery.length) t.comment(`recovery times:\n${recovery.join('\n')}`);
});

t.test('the same webhook delivered 50 times in parallel: one capture, one activation', async (t) => {
  const { subscriptionId, paymentId, approvalUrl } = await buy('fault-dup');
  await approveInBrowser(approvalUrl);
  await waitFor(async () => (await status(subscriptionId)) === 'active', { what: 'active', timeoutMs: 30_000 });
  const sent = (await stack.paypal('/_control/webhooks')) as {
    id: string;
    eventType: string;
    event: { resource: { id: string } };
  }[];
  const mine = sent.filter((w) => ['CHECKOUT.ORDER.APPROVED', 'PAYMENT.CAPTURE.COMPLETED'].includes(w.eventType));
  await Promise.all(
    mine.flatMap((w) => Array.from({ length: 50 }, () => stack.paypal(`/_control/webhooks/${w.id}/resend`, {}))),
  );
  await waitFor(
    async () =>
      Number(
        (
          await stack.tdb.db
            .selectFrom('provider_events')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('processed_at', 'is', null)
            .executeTakeFirstOrThrow()
        ).n,
      ) === 0,
    { what: 'every event processed' },
  );
  t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
  t.same(await brokenInvariants(stack), []);
});

t.test(
  'a capture that succeeds at PayPal but whose answer is lost (timeout): retried with the same request id, one capture',
  async (t) => {
    await stack.paypal('/_control/behaviour', { delays: [{ match: '/capture', ms: 3_500 }] });
    const { subscriptionId, paymentId, approvalUrl } = await buy('fault-timeout');
    await approveInBrowser(approvalUrl);
    await waitFor(
      async () =>
        ((await stack.paypal('/_control/captures')) as { customId: string }[]).some((c) => c.customId === paymentId),
      { what: 'the capture made at PayPal', timeoutMs: 20_000 },
    );
    const lost = Date.now();
    await stack.paypal('/_control/behaviour', { delays: [] });
    await waitFor(async () => (await status(subscriptionId)) === 'active', {
      what: 'active after the lost answer',
      timeoutMs: 60_000,
    });
    recovery.push(`  capture answer lost: active ${Date.now() - lost} ms after PayPal answered in time again`);
    t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
    const calls = ((await stack.paypal('/_control/calls')) as { path: string; requestId: string | null }[]).filter(
      (c) => c.path.endsWith('/capture'),
    );
    t.ok(calls.length >= 2, `captured ${calls.length} times at the HTTP level`);
    t.equal(
      new Set(calls.filter((c) => c.requestId?.startsWith(paymentId)).map((c) => c.requestId)).size,
      1,
      'every try carried the same PayPal-Request-Id',
    );
    t.same(await brokenInvariants(stack), []);
  },
);

t.test(
  'the payment-worker stopped (SIGTERM) during a slow PayPal call: exits 0 in time, hands the work back, a new worker finishes it once',
  async (t) => {
    // Longer than PAYPAL_TIMEOUT_MS (3 s here): each try times out, and the adapter would try three times.
    await stack.paypal('/_control/behaviour', { delays: [{ match: '/capture', ms: 20_000 }] });
    const { subscriptionId, paymentId, approvalUrl } = await buy('fault-sigterm');
    await approveInBrowser(approvalUrl);
    const orderId = new URL(approvalUrl).searchParams.get('token')!;
    await waitFor(
      async () =>
        ((await stack.paypal('/_control/held')) as string[]).includes(`POST /v2/checkout/orders/${orderId}/capture`),
      { what: 'this capture call in flight' },
    );
    const worker = stack.processes.get('payment-worker')!;
    const stopping = Date.now();
    const code = await worker.stop('SIGTERM');
    const took = Date.now() - stopping;
    t.equal(code, 0, 'exit 0');
    t.ok(took < 10_000, `stopped in ${took} ms (SIGTERM grace 10 s)`);
    await stack.paypal('/_control/behaviour', { delays: [] });
    const started = Date.now();
    await stack.replica('payment-worker');
    await waitFor(async () => (await status(subscriptionId)) === 'active', {
      what: 'active through the new worker',
      timeoutMs: 60_000,
    });
    recovery.push(
      `  payment-worker SIGTERM mid-call: active ${Date.now() - started} ms after a new worker started (stop took ${took} ms)`,
    );
    await waitFor(async () => (await rolesOf('fault-sigterm')).includes('premium'), { what: 'the role granted' });
    t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
    t.same(await brokenInvariants(stack), []);
  },
);

t.test(
  'the payment-worker SIGKILLed while PayPal makes the capture: the redelivery captures with the same request id, once',
  async (t) => {
    await stack.paypal('/_control/behaviour', { delays: [{ match: '/capture', ms: 1_500 }] });
    const { subscriptionId, paymentId, approvalUrl } = await buy('fault-kill-paypal');
    const workers = [...stack.processes.entries()].filter(
      ([n, p]) => n.startsWith('payment-worker') && p.child.exitCode === null && p.child.signalCode === null,
    );
    await approveInBrowser(approvalUrl);
    const orderId = new URL(approvalUrl).searchParams.get('token')!;
    await waitFor(
      async () =>
        ((await stack.paypal('/_control/held')) as string[]).includes(`POST /v2/checkout/orders/${orderId}/capture`),
      { what: 'this capture call in flight' },
    );
    for (const [, w] of workers) await w.stop('SIGKILL');
    await waitFor(
      async () =>
        ((await stack.paypal('/_control/captures')) as { customId: string }[]).some((c) => c.customId === paymentId),
      { what: 'PayPal finished the capture regardless' },
    );
    await stack.paypal('/_control/behaviour', { delays: [] });
    const started = Date.now();
    await stack.replica('payment-worker');
    await waitFor(async () => (await status(subscriptionId)) === 'active', {
      what: 'active through a new worker',
      timeoutMs: 60_000,
    });
    recovery.push(
      `  payment-worker SIGKILL during the capture: active ${Date.now() - started} ms after a new worker started`,
    );
    t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
    t.same(await brokenInvariants(stack), []);
  },
);

t.test('the role-worker SIGKILLed during the Auth call: the role is granted once by the next one', async (t) => {
  await stack.auth('/_control/delay', { ms: 1_500 });
  const { subscriptionId, approvalUrl } = await buy('fault-kill-auth');
  const calls = async () =>
    ((await stack.auth('/_control/calls')) as { method: string; path: string }[]).filter((c) =>
      c.path.includes('fault-kill-auth'),
    ).length;
  const before = await calls();
  await approveInBrowser(approvalUrl);
  await waitFor(async () => (await status(subscriptionId)) === 'active', { what: 'active' });
  await waitFor(
    async () => ((await stack.auth('/_control/held')) as string[]).some((k) => k.includes('fault-kill-auth')),
    { what: 'the role-worker waiting on the Auth service' },
  );
  const worker = stack.processes.get('role-worker')!;
  await worker.stop('SIGKILL');
  await stack.auth('/_control/delay', { ms: 0 });
  const started = Date.now();
  await stack.replica('role-worker');
  await waitFor(async () => (await rolesOf('fault-kill-auth')).includes('premium'), {
    what: 'the role granted by the new worker',
    timeoutMs: 60_000,
  });
  recovery.push(
    `  role-worker SIGKILL during the Auth call: role granted ${Date.now() - started} ms after a new worker started`,
  );
  t.ok((await calls()) > before, 'the Auth service was called');
  const granted = (await stack.notifications()).filter(
    (n) => n.type === 'role.granted' && n.data['userId'] === 'fault-kill-auth',
  );
  t.ok(granted.length <= 1, `role.granted at most once (${granted.length})`);
  t.same(await brokenInvariants(stack), []);
});

t.test('Postgres backends terminated again and again while purchases complete: each completes once', async (t) => {
  const buyers = await Promise.all(Array.from({ length: 5 }, (_, i) => buy(`fault-pgkill-${i}`)));
  let kills = 0;
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      const r = await sql<{ n: number }>`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where datname = current_database() and application_name in ('payment-worker', 'role-worker', 'webhook-gateway') and pid <> pg_backend_pid()`.execute(
        stack.tdb.db,
      );
      kills += r.rows[0]?.n ?? 0;
      await new Promise((res) => setTimeout(res, 150));
    }
  })();
  const started = Date.now();
  await Promise.all(buyers.map((b) => approveInBrowser(b.approvalUrl)));
  await new Promise((r) => setTimeout(r, 2_000));
  stop = true;
  await killer;
  await waitFor(
    async () => (await Promise.all(buyers.map((b) => status(b.subscriptionId)))).every((s) => s === 'active'),
    { what: 'all five active', timeoutMs: 60_000 },
  );
  recovery.push(
    `  Postgres backends terminated (${kills} kills over 2 s): all five active ${Date.now() - started} ms after approving`,
  );
  for (const b of buyers) t.equal(await capturesOf(b.paymentId), 1, 'one capture each');
  t.same(await brokenInvariants(stack), []);
});

t.test(
  'a client double-submitting checkouts, then approving every approval URL: one subscription, one capture kept',
  async (t) => {
    const token = await stack.tokenFor('fault-double');
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        fetch(`${stack.urls['billing-api']}/v1/subscriptions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ planId: 'pro-monthly' }),
        }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { approvalUrl?: string; subscriptionId?: string },
        })),
      ),
    );
    const created = answers.filter((a) => a.status === 201);
    t.ok(
      created.length >= 1,
      `${created.length} checkouts accepted, the others refused: ${answers.map((a) => a.status).join(', ')}`,
    );
    await Promise.all(created.map((a) => approveInBrowser(a.body.approvalUrl!).catch(() => null)));
    await waitFor(
      async () => {
        const subs = await stack.tdb.db
          .selectFrom('subscriptions')
          .select('status')
          .where('user_id', '=', 'fault-double')
          .execute();
        return subs.filter((s) => s.status === 'active').length === 1 && subs.every((s) => s.status !== 'pending');
      },
      { what: 'one active subscription, none pending', timeoutMs: 30_000 },
    );
    t.same(await brokenInvariants(stack), []);
  },
);

t.test("a poison message on the payment-worker's queue: dead-lettered, everything else flows", async (t) => {
  const conn = await amqplib.connect(stack.vhost.url);
  const ch = await conn.createConfirmChannel();
  ch.sendToQueue('billing.payment-worker', Buffer.from('{"not": "an envelope"'), {
    persistent: true,
    messageId: 'poison-1',
    type: 'payment.check.requested',
  });
  await ch.waitForConfirms();
  await conn.close();
  await waitFor(
    () => stack.tdb.db.selectFrom('dead_letters').select('id').where('message_id', '=', 'poison-1').executeTakeFirst(),
    { what: 'the poison dead-lettered' },
  );
  const { subscriptionId, approvalUrl } = await buy('fault-after-poison');
  await approveInBrowser(approvalUrl);
  await waitFor(async () => (await status(subscriptionId)) === 'active', { what: 'a purchase after the poison' });
  t.same(await brokenInvariants(stack, { plantedDeadLetters: 1 }), []);
});

t.test(
  'RabbitMQ cut twice for every app while checkouts, approvals and webhooks keep arriving: every purchase completes once',
  async (t) => {
    const buyers = await Promise.all(Array.from({ length: 10 }, (_, i) => buy(`fault-mq-${i}`)));
    const started = Date.now();
    const approving = (async () => {
      for (const [i, b] of buyers.entries()) {
        if (i === 2 || i === 7) stack.brokerProxy.cut();
        if (i === 5 || i === 9) stack.brokerProxy.restore();
        await approveInBrowser(b.approvalUrl);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const late = await buy('fault-mq-late'); // a checkout while the broker is away: stored, published later
    await approving;
    stack.brokerProxy.restore();
    await approveInBrowser(late.approvalUrl);
    const all = [...buyers, late];
    await waitFor(
      async () => (await Promise.all(all.map((b) => status(b.subscriptionId)))).every((s) => s === 'active'),
      { what: 'every purchase active', timeoutMs: 90_000, intervalMs: 500 },
    );
    recovery.push(
      `  RabbitMQ cut twice during 11 purchases: all active ${Date.now() - started} ms after the first approval`,
    );
    for (const b of all) t.equal(await capturesOf(b.paymentId), 1, 'one capture each');
    t.same(await brokenInvariants(stack, { plantedDeadLetters: 1 }), []);
  },
);

t.test(
  'the webhook-gateway SIGKILLed while it checks a webhook: PayPal delivers again, the purchase completes once',
  async (t) => {
    const { subscriptionId, paymentId, approvalUrl } = await buy('fault-kill-gateway');
    await stack.paypal('/_control/behaviour', { delays: [{ match: 'verify-webhook-signature', ms: 1_500 }] });
    await approveInBrowser(approvalUrl);
    await waitFor(
      async () =>
        ((await stack.paypal('/_control/held')) as string[]).some((k) => k.includes('verify-webhook-signature')),
      { what: 'a webhook being checked' },
    );
    await stack.processes.get('webhook-gateway')!.stop('SIGKILL');
    await stack.paypal('/_control/behaviour', { delays: [] });
    const started = Date.now();
    const gateway = await stack.replica('webhook-gateway');
    // PayPal keeps delivering to the webhook URL it knows: the new gateway takes it over.
    await stack.paypal('/_control/webhook-url', { url: `${stack.urlOf(gateway)}/webhooks/paypal` });
    await waitFor(async () => (await status(subscriptionId)) === 'active', {
      what: "active through PayPal's redelivery",
      timeoutMs: 60_000,
    });
    recovery.push(
      `  webhook-gateway SIGKILL mid-request: active ${Date.now() - started} ms after a new gateway started`,
    );
    t.equal(await capturesOf(paymentId), 1, 'one capture at PayPal');
    t.same(await brokenInvariants(stack, { plantedDeadLetters: 1 }), []);
  },
);

t.test(
  "every ordering of one order's events (approved, captured, wallet saved), each delivered twice: the same end state, once",
  async (t) => {
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    for (const [n, order] of orders.entries()) {
      const userId = `fault-order-${n}`;
      await stack.paypal('/_control/behaviour', { webhookMode: 'hold' });
      const { subscriptionId, paymentId, approvalUrl } = await buy(userId);
      const back = await approveInBrowser(approvalUrl);
      await fetch(back, { redirect: 'manual' }); // the buyer's return: the order is looked up and captured
      await waitFor(async () => ((await stack.paypal('/_control/webhooks/held')) as string[]).length === 3, {
        what: 'three events held',
      });
      const held = (await stack.paypal('/_control/webhooks/held')) as string[];
      await stack.paypal('/_control/behaviour', { webhookMode: 'deliver' });
      await stack.paypal('/_control/webhooks/release', { order: [...order, ...order] });
      await waitFor(async () => (await status(subscriptionId)) === 'active', {
        what: `active (${order.map((i) => held[i]).join(', ')})`,
      });
      await waitFor(
        async () =>
          Number(
            (
              await stack.tdb.db
                .selectFrom('provider_events')
                .select((eb) => eb.fn.countAll<string>().as('n'))
                .where('payment_id', '=', paymentId)
                .where('processed_at', 'is not', null)
                .executeTakeFirstOrThrow()
            ).n,
          ) >= 3,
        { what: 'the three events applied' },
      );
      const sub = await stack.tdb.db
        .selectFrom('subscriptions')
        .selectAll()
        .where('id', '=', subscriptionId)
        .executeTakeFirstOrThrow();
      t.ok(sub.vault_id, `${order.map((i) => held[i]).join(' → ')}: active, the wallet kept`);
      t.equal(await capturesOf(paymentId), 1, 'one capture');
      const activated = (await stack.notifications()).filter(
        (m) => m.type === 'subscription.activated' && m.data['subscriptionId'] === subscriptionId,
      );
      t.equal(activated.length, 1, 'one subscription.activated');
    }
    t.same(await brokenInvariants(stack, { plantedDeadLetters: 1 }), []);
  },
);
