import t, { type Test } from 'tap';
import { waitFor } from '@billing/testing';
import { startStack } from '../src/stack.js';

// docs/scheduler.md with short periods: PT30S plans (RENEWAL_TEST_PERIOD overrides it), the scheduler every 500 ms.
// Not shorter: the seven buyers are all active before the declines are set, and at PT20S a loaded CI
// machine renewed the first of them before that (the hard decline was charged and never expired).
const PERIOD = process.env['RENEWAL_TEST_PERIOD'] ?? 'PT30S';
const periodMs = Number(/^PT(\d+)S$/.exec(PERIOD)![1]) * 1000;
const stack = await startStack(
  {
    SCHEDULER_INTERVAL_MS: '500',
    RENEWAL_LEAD_MS: '2000',
    DUNNING_RETRY_MS: '1500,3000',
    RECONCILE_AFTER_MS: '1500',
    CHECKOUT_TTL_MS: '5000',
  },
  {
    plans: [
      {
        id: 'short',
        name: 'Short',
        description: 'short periods',
        amount: 250,
        currency: 'USD',
        period: PERIOD,
        role: 'short-role',
        active: true,
        maxPause: 'PT1M',
      },
    ],
  },
);
t.teardown(() => stack.stop());

const call = async (method: string, path: string, token: string, body?: unknown) => {
  const res = await fetch(`${stack.urls['billing-api']}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
  });
  return { status: res.status, body: (await res.json()) as any };
};
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];
const sub = (id: string) =>
  stack.tdb.db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const renewalPayments = (id: string) =>
  stack.tdb.db
    .selectFrom('payments')
    .selectAll()
    .where('subscription_id', '=', id)
    .where('kind', '=', 'renewal')
    .orderBy('period_index')
    .orderBy('attempt')
    .execute();
const notes = async (type: string, subscriptionId: string) =>
  (await stack.notifications()).filter((n) => n.type === type && n.data['subscriptionId'] === subscriptionId);
const chargesFor = async (paymentIds: string[]) =>
  (await stack.paypal('/_control/calls')).filter(
    (c: any) =>
      c.path === '/v2/checkout/orders' &&
      c.body?.payment_source?.paypal?.vault_id &&
      paymentIds.includes(c.body.purchase_units[0].custom_id),
  );

/** Buys the short plan for a new user and has it approved; resolves once active. */
async function subscribe(userId: string) {
  const token = await stack.tokenFor(userId);
  const created = await call('POST', '/v1/subscriptions', token, { planId: 'short' });
  const orderId = new URL(created.body.approvalUrl).searchParams.get('token')!;
  await stack.paypal(`/_control/orders/${orderId}/approve`, {});
  await waitFor(
    async () =>
      (await sub(created.body.subscriptionId)).status === 'active' && (await rolesOf(userId)).includes('short-role'),
    { what: `${userId} active with the role`, timeoutMs: 20_000 },
  );
  const row = await sub(created.body.subscriptionId);
  return { token, id: created.body.subscriptionId as string, vaultId: row.vault_id!, paidThrough: row.paid_through! };
}

t.test(
  'webhooks dropped for a checkout: reconciliation completes it; an unapproved one expires after the TTL',
  async (t) => {
    await stack.paypal('/_control/behaviour', { webhookMode: 'drop' });
    const token = await stack.tokenFor('user-recon');
    const created = await call('POST', '/v1/subscriptions', token, { planId: 'short' });
    await stack.paypal(`/_control/orders/${new URL(created.body.approvalUrl).searchParams.get('token')}/approve`, {});
    await waitFor(async () => (await rolesOf('user-recon')).includes('short-role'), {
      what: 'reconciliation capturing and activating',
      timeoutMs: 20_000,
    });
    t.equal((await sub(created.body.subscriptionId)).status, 'active');
    const calls = await stack.paypal('/_control/calls');
    t.ok(
      calls.some((c: any) => c.method === 'GET' && c.path.startsWith('/v2/checkout/orders/')),
      'the order was looked up at PayPal',
    );
    await stack.paypal('/_control/behaviour', { webhookMode: 'deliver' });

    const abandonedToken = await stack.tokenFor('user-abandon');
    const abandoned = await call('POST', '/v1/subscriptions', abandonedToken, { planId: 'short' });
    await waitFor(async () => (await sub(abandoned.body.subscriptionId)).status === 'cancelled', {
      what: 'the unapproved checkout cancelled',
      timeoutMs: 20_000,
    });
    const p = await stack.tdb.db
      .selectFrom('payments')
      .selectAll()
      .where('id', '=', abandoned.body.paymentId)
      .executeTakeFirstOrThrow();
    t.equal(p.status, 'cancelled');
    t.equal(p.failure_reason, 'checkout_expired');
  },
);

t.test(
  `renewals, dunning, expiry, resume, a deleted vault token, pauses and a retention offer, side by side with ${PERIOD} periods`,
  async (t) => {
    // Started now, awaited at the end: a failure is kept (not left unhandled) and thrown there.
    const pausing = pausesAndRetention(t).then(
      () => null,
      (e: unknown) => e,
    );
    type Sub = Awaited<ReturnType<typeof subscribe>>;
    const [renewer, dunned, saved, leaver, resumer, unvaulted, hard] = (await Promise.all(
      ['user-renew', 'user-dunning', 'user-saved', 'user-leaver', 'user-resumer', 'user-unvaulted', 'user-hard'].map(
        (u) => subscribe(u),
      ),
    )) as [Sub, Sub, Sub, Sub, Sub, Sub, Sub];
    // Declines on saved wallets: every try for one, the first two (the first attempt and retry 1) for
    // another; a hard decline (docs/paypal.md, declines: PAYER_CANNOT_PAY) on every try for a third.
    await stack.paypal('/_control/behaviour', {
      declineVaults: { [dunned.vaultId]: 100, [saved.vaultId]: 2, [hard.vaultId]: 100 },
      declineIssues: { [hard.vaultId]: 'PAYER_CANNOT_PAY' },
    });
    const leaving = await call('POST', `/v1/subscriptions/${leaver.id}/cancel`, leaver.token, {
      mode: 'at_period_end',
    });
    t.equal(leaving.body.cancelAtPeriodEnd, true);
    await call('POST', `/v1/subscriptions/${resumer.id}/cancel`, resumer.token, { mode: 'at_period_end' });
    t.equal(
      (await call('POST', `/v1/subscriptions/${resumer.id}/resume`, resumer.token)).body.cancelAtPeriodEnd,
      false,
      'resumed before the boundary',
    );
    await stack.paypal(`/_control/vault/${unvaulted.vaultId}/delete`, {});
    // docs/scheduler.md, renewals and dunning: the revoked wallet is not charged; the buyer is told and may save a new one.
    await waitFor(async () => (await sub(unvaulted.id)).payment_method_required === 'payment_token_deleted', {
      what: 'VAULT.PAYMENT-TOKEN.DELETED applied',
    });

    let roleLost = false;
    const watch = setInterval(
      () =>
        void rolesOf('user-renew').then((r) => {
          if (!r.includes('short-role')) roleLost = true;
        }),
      250,
    );
    t.teardown(() => clearInterval(watch));

    // The leaver and the deleted token: no renewal, expired at the boundary, role revoked.
    for (const [who, s] of [
      ['user-leaver', leaver],
      ['user-unvaulted', unvaulted],
    ] as const) {
      await waitFor(async () => (await sub(s.id)).status === 'expired', {
        what: `${who} expired`,
        timeoutMs: periodMs + 15_000,
      });
      t.ok(
        (await sub(s.id)).expired_at!.getTime() >= s.paidThrough.getTime(),
        `${who}: expired at the boundary, not before`,
      );
      // The leaver is not renewed at all; the revoked wallet's renewal fails without a PayPal call
      // (no method: docs/scheduler.md), then the subscription waits and expires.
      const tried = await renewalPayments(s.id);
      t.equal((await chargesFor(tried.map((p) => p.id))).length, 0, `${who}: no renewal charge`);
      t.ok(
        tried.every((p) => p.status === 'failed' && p.failure_reason === 'no_payment_method'),
        `${who}: any renewal failed for want of a method`,
      );
      await waitFor(async () => !(await rolesOf(who)).includes('short-role'), { what: `${who}'s role revoked` });
      await waitFor(async () => (await notes('subscription.expired', s.id)).length >= 1, {
        what: `${who}: subscription.expired relayed`,
      });
      t.equal((await notes('subscription.expired', s.id)).length, 1);
    }

    // Declined on every try: past_due, retries on the schedule, then expired and the role revoked.
    await waitFor(async () => (await sub(dunned.id)).status === 'expired', {
      what: 'dunning exhausted',
      timeoutMs: periodMs + 20_000,
    });
    const tries = await renewalPayments(dunned.id);
    t.equal(tries.length, 3, 'the first attempt and two retries');
    t.ok(
      tries.every((p) => p.status === 'failed' && p.failure_reason === 'declined' && p.period_index === 1),
      'each a new payment for the same period',
    );
    // The row commits before the outbox relay hands the last notification on: wait for all three.
    await waitFor(async () => (await notes('subscription.renewal_failed', dunned.id)).length >= 3, {
      what: 'three subscription.renewal_failed relayed',
    });
    // The notification queue is read and put back (quorum queues requeue at the tail): order by retry time.
    const failedNotes = (await notes('subscription.renewal_failed', dunned.id)).sort(
      (a, b) =>
        (a.data['nextRetryAt'] === null ? Infinity : Date.parse(a.data['nextRetryAt'] as string)) -
        (b.data['nextRetryAt'] === null ? Infinity : Date.parse(b.data['nextRetryAt'] as string)),
    );
    t.equal(failedNotes.length, 3);
    t.equal(failedNotes[2]!.data['nextRetryAt'], null, 'null after the last try');
    t.equal(failedNotes.filter((n) => n.data['nextRetryAt'] === null).length, 1, 'and only then');
    const firstFailure = Date.parse(failedNotes[0]!.data['nextRetryAt'] as string) - 1500;
    t.ok(
      tries[1]!.created_at.getTime() >= firstFailure + 1500 - 50 &&
        tries[2]!.created_at.getTime() >= firstFailure + 3000 - 50,
      'retries at the first failure + DUNNING_RETRY_MS[i]',
    );
    await waitFor(async () => !(await rolesOf('user-dunning')).includes('short-role'), {
      what: 'the role revoked after dunning',
    });

    // Declined hard: tried once, no retry on the schedule, the buyer asked for a new method; then it
    // expires at the last retry's time like any subscription waiting for one.
    await waitFor(async () => (await sub(hard.id)).status === 'expired', {
      what: 'the hard decline expired at its deadline',
      timeoutMs: periodMs + 20_000,
    });
    const hardTries = await renewalPayments(hard.id);
    t.same(
      hardTries.map((p) => [p.period_index, p.attempt, p.status, p.failure_reason]),
      [[1, 0, 'failed', 'declined']],
      'a hard decline: one try, no retry',
    );
    t.equal((await chargesFor(hardTries.map((p) => p.id))).length, 1, 'PayPal asked once');
    await waitFor(async () => (await notes('subscription.payment_method_required', hard.id)).length >= 1, {
      what: 'subscription.payment_method_required relayed',
    });
    t.match(
      (await notes('subscription.payment_method_required', hard.id)).map((n) => n.data['reason']),
      ['payer_action_required'],
      'the buyer asked for a new method',
    );

    // Declined twice, paid on the second retry: back to active for the same period.
    await waitFor(async () => (await renewalPayments(saved.id)).some((p) => p.status === 'completed'), {
      what: 'the second retry paying',
      timeoutMs: periodMs + 20_000,
    });
    const savedTries = await renewalPayments(saved.id);
    t.same(
      savedTries.slice(0, 3).map((p) => [p.period_index, p.attempt, p.status]),
      [
        [1, 0, 'failed'],
        [1, 1, 'failed'],
        [1, 2, 'completed'],
      ],
    );
    t.equal((await sub(saved.id)).status, 'active');
    t.ok((await rolesOf('user-saved')).includes('short-role'), 'the grant was kept while past_due');

    // Three renewals in a row, each period charged once, the role never lost.
    await waitFor(async () => (await notes('subscription.renewed', renewer.id)).length >= 3, {
      what: 'three renewals',
      timeoutMs: 3 * periodMs + 20_000,
    });
    const paid = (await renewalPayments(renewer.id)).filter((p) => p.status === 'completed');
    t.same(
      paid.slice(0, 3).map((p) => p.period_index),
      [1, 2, 3],
      'periods 1, 2 and 3 paid',
    );
    const charges = await chargesFor(paid.map((p) => p.id));
    t.equal(charges.length, paid.length, 'one PayPal charge per renewal payment');
    const renewed = await notes('subscription.renewed', renewer.id);
    t.equal(
      new Set(renewed.map((n) => n.data['currentPeriodStart'])).size,
      renewed.length,
      'each renewal for its own period',
    );
    t.notOk(roleLost, 'the role was never lost');

    // docs/scheduler.md, renewal reminders: one subscription.renewal_upcoming per period, at half of
    // a period, each published before that period's renewal was charged; none for the leaver.
    const reminded = (await notes('subscription.renewal_upcoming', renewer.id)).sort((a, b) =>
      String(a.data['renewsAt']).localeCompare(String(b.data['renewsAt'])),
    );
    t.ok(reminded.length >= 3, `a reminder for each period renewed (${reminded.length})`);
    t.equal(new Set(reminded.map((n) => n.data['renewsAt'])).size, reminded.length, 'one per period');
    t.ok(
      reminded.every((n) => n.data['amount'] === 250 && n.data['currency'] === 'USD' && n.data['planId'] === 'short'),
      'with what the renewal charges',
    );
    const reminderRows = (
      await stack.tdb.db
        .selectFrom('outbox')
        .select(['created_at', 'envelope'])
        .where('type', '=', 'subscription.renewal_upcoming')
        .execute()
    ).filter((r) => (r.envelope as { data: { subscriptionId: string } }).data.subscriptionId === renewer.id);
    const firstTries = (await renewalPayments(renewer.id)).filter((p) => p.attempt === 0);
    for (const [i, n] of reminded.slice(0, 3).entries()) {
      const row = reminderRows.find(
        (r) => (r.envelope as { data: { renewsAt: string } }).data.renewsAt === n.data['renewsAt'],
      )!;
      const charge = firstTries.find((p) => p.period_index === i + 1)!;
      t.ok(row.created_at < charge.created_at, `period ${i + 1}: reminded before its renewal was charged`);
    }
    t.same(await notes('subscription.renewal_upcoming', leaver.id), [], 'no reminder for a subscription ending');
    t.ok(
      (await renewalPayments(resumer.id)).some((p) => p.status === 'completed'),
      'the resumed one renewed',
    );
    const paused = await pausing;
    if (paused) throw paused;
  },
);

/**
 * docs/api.md, pause and resume (no charge and no role while paused, the period shifted by the pause) and
 * the retention offer (taken, the next renewal at its price): run alongside the renewals above, on
 * subscriptions of their own, so the wait for their renewals overlaps.
 */
async function pausesAndRetention(t: Test): Promise<void> {
  // docs/api.md, retention offer: an operator sets one; a buyer about to cancel takes it instead.
  const admin = await stack.tokenFor('ops-retention', ['admin']);
  const created = await fetch(`${stack.urls['admin-portal']}/admin/api/v1/coupons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      code: 'STAY50',
      percentOff: 50,
      durationPeriods: 1,
      maxRedemptions: null,
      expiresAt: null,
      retentionOffer: true,
    }),
  });
  t.equal(created.status, 201);
  type Sub = Awaited<ReturnType<typeof subscribe>>;
  const [pauser, early, stayer] = (await Promise.all(
    ['user-pause', 'user-pause-early', 'user-stay'].map((u) => subscribe(u)),
  )) as [Sub, Sub, Sub];
  t.match(await call('POST', `/v1/subscriptions/${stayer.id}/retention-offer`, stayer.token), {
    status: 200,
    body: { offer: { couponCode: 'STAY50', price: 125, fromPeriodStart: stayer.paidThrough.toISOString() } },
  });
  t.same(
    (await call('POST', `/v1/subscriptions/${stayer.id}/retention-offer`, stayer.token)).body,
    { offer: null },
    'offered once',
  );
  t.match(await call('POST', `/v1/subscriptions/${stayer.id}/retention-offer/accept`, stayer.token), {
    status: 200,
    body: { status: 'active', cancelAtPeriodEnd: false },
  });
  t.equal(
    (await call('POST', `/v1/subscriptions/${stayer.id}/retention-offer/accept`, stayer.token)).status,
    409,
    'accepted once',
  );
  t.match(
    await call('POST', `/v1/subscriptions/${pauser.id}/pause`, pauser.token, {
      resumesAt: new Date(Date.now() + 61_000).toISOString(),
    }),
    {
      status: 422,
      body: { type: '/problems/pause-too-long', detail: /at most PT1M/ },
    },
  );
  const resumesAt = new Date(Date.now() + 8_000);
  const paused = await call('POST', `/v1/subscriptions/${pauser.id}/pause`, pauser.token, {
    resumesAt: resumesAt.toISOString(),
  });
  t.match(paused, { status: 200, body: { status: 'paused', resumesAt: resumesAt.toISOString() } });
  const pausedAt = new Date(paused.body.pausedAt as string);
  t.equal(
    (await call('POST', `/v1/subscriptions/${pauser.id}/pause`, pauser.token)).status,
    409,
    'one pause at a time',
  );
  await waitFor(async () => !(await rolesOf('user-pause')).includes('short-role'), {
    what: 'the role revoked at the pause',
  });
  t.match((await notes('subscription.paused', pauser.id))[0]?.data, { resumesAt: resumesAt.toISOString() });

  // The buyer resumes the other one early: the role comes back at once.
  await call('POST', `/v1/subscriptions/${early.id}/pause`, early.token, {});
  await waitFor(async () => !(await rolesOf('user-pause-early')).includes('short-role'), { what: 'early: revoked' });
  t.match(await call('POST', `/v1/subscriptions/${early.id}/resume`, early.token), {
    status: 200,
    body: { status: 'active', pausedAt: null },
  });
  await waitFor(async () => (await rolesOf('user-pause-early')).includes('short-role'), {
    what: 'early: granted again',
  });

  // The scheduler resumes the first at resumesAt; the paid period's end moves by the paused time.
  await waitFor(async () => (await sub(pauser.id)).status === 'active', {
    what: 'resumed by the scheduler',
    timeoutMs: 20_000,
  });
  const resumedAt = new Date((await notes('subscription.resumed', pauser.id))[0]!.data['resumedAt'] as string);
  t.ok(resumedAt >= resumesAt, 'not before resumesAt');
  await waitFor(async () => (await rolesOf('user-pause')).includes('short-role'), { what: 'the role granted again' });
  const shifted = (await sub(pauser.id)).paid_through!;
  const d = resumedAt.getTime() - pausedAt.getTime();
  t.equal(shifted.getTime(), pauser.paidThrough.getTime() + d, 'paid through later by the paused time');
  t.equal((await notes('subscription.resumed', pauser.id))[0]!.data['currentPeriodEnd'], shifted.toISOString());
  t.same(await renewalPayments(pauser.id), [], 'nothing charged while paused');

  // The renewal comes at the shifted end, not before.
  await waitFor(async () => (await renewalPayments(pauser.id)).some((p) => p.status === 'completed'), {
    what: 'the renewal after the shifted period',
    timeoutMs: 60_000,
  });
  const [renewal] = await renewalPayments(pauser.id);
  t.equal(renewal!.period_start!.getTime(), shifted.getTime(), 'the next period starts where the shifted one ends');
  t.ok(renewal!.created_at.getTime() >= shifted.getTime() - 2_500, 'charged at the shifted time (less the lead)');
  t.equal((await notes('subscription.paused', pauser.id)).length, 1);
  t.equal((await notes('subscription.resumed', pauser.id)).length, 1);

  // The buyer who stayed: the next period charged at the offer's price, at PayPal too.
  await waitFor(async () => (await renewalPayments(stayer.id)).some((p) => p.status === 'completed'), {
    what: "the stayer's renewal",
    timeoutMs: 30_000,
  });
  const [kept] = await renewalPayments(stayer.id);
  t.equal(kept!.amount, 125, 'half price for the period after the offer');
  const charged = await chargesFor([kept!.id]);
  t.match(charged, [{ body: { purchase_units: [{ amount: { value: '1.25', currency_code: 'USD' } }] } }]);
}
