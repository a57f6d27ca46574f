import amqplib from 'amqplib';
import { sql } from 'kysely';
import { OPEN_PAYMENT_STATUSES } from '@billing/domain';
import { waitFor } from '@billing/testing';
import type { Stack } from './stack.js';

interface Capture {
  id: string;
  orderId: string;
  status: string;
  customId: string | null;
  amount: number;
  currency: string;
  refunded: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAID = ['completed', 'partially_refunded', 'refunded', 'reversed'] as const;

/**
 * docs/guarantees.md's invariants, checked against what the outside world saw (captures and refunds at the
 * PayPal stand-in, roles at the Auth stand-in, queues at the broker) once the system is quiet.
 * Returns one line per broken promise; an empty list means all hold.
 */
export async function brokenInvariants(stack: Stack, opts: { plantedDeadLetters?: number } = {}): Promise<string[]> {
  const db = stack.tdb.db;
  const broken: string[] = [];
  // Quiet first: the outbox drained and nothing open that a message is still moving.
  await waitFor(
    async () =>
      Number(
        (
          await db
            .selectFrom('outbox')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('published_at', 'is', null)
            .executeTakeFirstOrThrow()
        ).n,
      ) === 0,
    { what: 'the outbox drained', timeoutMs: 30_000 },
  );
  await waitFor(
    async () =>
      Number(
        (
          await db
            .selectFrom('refunds')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('status', 'in', ['requested', 'pending'])
            .executeTakeFirstOrThrow()
        ).n,
      ) === 0,
    { what: 'every refund sent', timeoutMs: 30_000 },
  );

  // The payments paid before the captures are read: each has its capture at PayPal by then (a
  // capture is recorded after PayPal made it). One paid since may have a capture made after the read.
  const paidBefore = new Set(
    (
      await db
        .selectFrom('payments')
        .select('id')
        .where('status', 'in', [...PAID])
        .execute()
    ).map((r) => r.id),
  );
  const captures = (await stack.paypal('/_control/captures')) as Capture[];
  const refundsAtPayPal = (await stack.paypal('/_control/refunds')) as { id: string; custom_id?: string }[];
  // A system with live subscriptions is never idle: a renewal falls due every few seconds. A capture
  // read above may be one PayPal has just made and the worker is still recording, so its payment is
  // read once it is no longer open (up to 15 s; one still open then is reported below).
  const captured = [
    ...new Set(
      captures
        .filter((c) => c.status === 'COMPLETED' && c.customId !== null && UUID.test(c.customId))
        .map((c) => c.customId!),
    ),
  ];
  if (captured.length)
    await waitFor(
      async () =>
        (
          await db
            .selectFrom('payments')
            .select('id')
            .where('id', 'in', captured)
            .where('status', 'in', [...OPEN_PAYMENT_STATUSES])
            .execute()
        ).length === 0,
      { what: 'the payments PayPal captured recorded', timeoutMs: 15_000 },
    ).catch(() => undefined);
  const payments = await db.selectFrom('payments').selectAll().execute();
  const refunds = await db.selectFrom('refunds').selectAll().execute();
  const byId = new Map(payments.map((p) => [p.id, p]));

  // Every completed payment has exactly one capture at PayPal (none for a free period: 0, never
  // charged), and its period.
  for (const p of payments.filter(
    (p) => paidBefore.has(p.id) && (PAID as readonly string[]).includes(p.status) && !p.failure_reason,
  )) {
    const mine = captures.filter((c) => c.customId === p.id && c.status !== 'DECLINED');
    const expected = p.amount === 0 ? 0 : 1;
    if (mine.length !== expected) broken.push(`payment ${p.id} (${p.status}) has ${mine.length} captures at PayPal`);
    if (p.amount === 0 && (p.provider_order_id || p.provider_capture_id))
      broken.push(`payment ${p.id} of 0 went to PayPal`);
    // A capture that came after its subscription was gone went back whole (docs/webhooks.md): it paid no period.
    const wentBack = refunds.some((r) => r.payment_id === p.id && r.origin === 'late_capture' && r.amount === p.amount);
    if ((!p.period_start || !p.period_end) && !wentBack) broken.push(`payment ${p.id} (${p.status}) has no period`);
  }
  // Every capture at PayPal has a completed payment of ours behind it, or is refunded in full.
  for (const c of captures.filter((c) => c.status !== 'DECLINED' && c.status !== 'PENDING')) {
    const p = c.customId ? byId.get(c.customId) : undefined;
    const kept =
      p && (PAID as readonly string[]).includes(p.status) && !p.failure_reason && p.provider_capture_id === c.id;
    if (!kept && c.refunded < c.amount)
      broken.push(
        `capture ${c.id} (${c.amount} ${c.currency}, ${c.refunded} refunded, for payment ${c.customId ?? 'none'}) has no completed payment of ours behind it`,
      );
  }
  // No period paid twice (at most one first payment or renewal holds money for it; a plan
  // change's payment pays the difference on top).
  const twice = await db
    .selectFrom('payments')
    .select(['subscription_id', 'period_index', (eb) => eb.fn.countAll<string>().as('n')])
    .where('status', 'in', ['completed', 'partially_refunded'])
    .where('kind', 'in', ['initial', 'renewal'])
    .where('failure_reason', 'is', null)
    .groupBy(['subscription_id', 'period_index'])
    .having(sql`count(*)`, '>', 1)
    .execute();
  for (const r of twice) broken.push(`subscription ${r.subscription_id} paid period ${r.period_index} ${r.n} times`);
  // Every plan change paid is applied once, and every payment of kind upgrade kept is a change applied.
  const upgrades = await db
    .selectFrom('payments as p')
    .leftJoin('plan_changes as c', 'c.payment_id', 'p.id')
    .select(['p.id', 'p.status', 'c.status as change'])
    .where('p.kind', '=', 'upgrade')
    .where('p.status', 'in', ['completed', 'partially_refunded'])
    .execute();
  for (const u of upgrades)
    if (u.change !== 'applied')
      broken.push(`upgrade payment ${u.id} kept but its plan change is ${u.change ?? 'missing'}`);
  // Every refund at PayPal has its row, and every completed refund of ours is at PayPal.
  const ourProviderIds = new Set(refunds.map((r) => r.provider_refund_id));
  for (const r of refundsAtPayPal) if (!ourProviderIds.has(r.id)) broken.push(`refund ${r.id} at PayPal has no row`);
  // No role at the Auth stand-in that our grants do not explain.
  const users = [...new Set((await db.selectFrom('subscriptions').select('user_id').execute()).map((s) => s.user_id))];
  const allGrants = await db
    .selectFrom('role_grants')
    .select(['user_id', 'role', 'ended_at', 'held_before', 'source'])
    .orderBy('started_at', 'desc')
    .execute();
  const grants = allGrants.filter((g) => g.ended_at === null);
  const subs = await db.selectFrom('subscriptions').select(['user_id', 'role', 'role_held_before']).execute();
  for (const userId of users) {
    const user = await fetch(`${stack.urls.auth}/_control/users/${encodeURIComponent(userId)}`);
    if (user.status === 404) continue;
    const roles = ((await user.json()) as { roles?: string[] }).roles ?? [];
    const subscriptionRoles = new Set([
      ...subs.filter((s) => s.user_id === userId).map((s) => s.role),
      ...allGrants.filter((g) => g.user_id === userId).map((g) => g.role),
    ]);
    for (const role of roles) {
      if (!subscriptionRoles.has(role)) continue; // not a role this system sells
      // Held before us: per (user, role), the latest subscription grant says so (docs/auth.md); a role
      // no subscription of ours ever granted, by the checkout's read.
      const latest = allGrants.find((g) => g.user_id === userId && g.role === role && g.source === 'subscription');
      const explained =
        grants.some((g) => g.user_id === userId && g.role === role) ||
        (latest ? latest.held_before : subs.some((s) => s.user_id === userId && s.role === role && s.role_held_before));
      if (!explained) broken.push(`user ${userId} holds ${role} at the Auth service with no grant of ours`);
    }
  }
  // A subscription in its free trial holds its role and has paid nothing (docs/api.md, free trials).
  const trialing = await db
    .selectFrom('subscriptions')
    .select(['id', 'trial_start', 'vault_id'])
    .where('status', '=', 'trialing')
    .execute();
  for (const s of trialing) {
    if (!s.trial_start || !s.vault_id) broken.push(`trialing subscription ${s.id} has no trial or no saved wallet`);
    const live = await db
      .selectFrom('role_grants')
      .select('id')
      .where('subscription_id', '=', s.id)
      .where('ended_at', 'is', null)
      .executeTakeFirst();
    if (!live) broken.push(`trialing subscription ${s.id} has no live grant`);
    if (payments.some((p) => p.subscription_id === s.id && (PAID as readonly string[]).includes(p.status)))
      broken.push(`trialing subscription ${s.id} has a paid payment`);
  }
  // Every grant that ended was applied at the Auth service.
  const unsettled = await db
    .selectFrom('role_grants')
    .select('id')
    .where('ended_at', 'is not', null)
    .where('settled_at', 'is', null)
    .execute();
  if (unsettled.length) broken.push(`${unsettled.length} ended grants never applied at the Auth service`);
  // Nothing parked, dead letters only where planted.
  const conn = await amqplib.connect(stack.vhost.url);
  try {
    for (const queue of ['payment-worker', 'role-worker'].map((q) => `billing.${q}.parked`)) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      const r = await ch.checkQueue(queue).catch(() => null);
      if (r && r.messageCount > 0) broken.push(`${r.messageCount} messages parked in ${queue}`);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close();
  }
  const dead = Number(
    (
      await db
        .selectFrom('dead_letters')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
  if (dead !== (opts.plantedDeadLetters ?? 0))
    broken.push(`${dead} dead letters (${opts.plantedDeadLetters ?? 0} planted)`);
  // One notification per state change. Delivery is at least once (a relay that loses its connection
  // after publishing sends the same message again, same id), so what counts is distinct message ids
  // per state change.
  const notes = await stack.notifications();
  const changeOf = (n: { type: string; data: Record<string, unknown> }): string | null => {
    const d = n.data;
    switch (n.type) {
      case 'subscription.activated':
      case 'subscription.expired':
        return `${n.type}:${d['subscriptionId']}`;
      case 'subscription.renewed':
        return `${n.type}:${d['subscriptionId']}:${d['currentPeriodStart']}`;
      case 'subscription.cancelled':
        return `${n.type}:${d['subscriptionId']}:${d['mode']}`;
      case 'payment.refunded':
        return `${n.type}:${d['refundId']}`;
      default:
        return null;
    }
  };
  const idsByChange = new Map<string, Set<string>>();
  for (const n of notes) {
    const key = changeOf(n);
    if (key) idsByChange.set(key, (idsByChange.get(key) ?? new Set()).add(n.id));
  }
  for (const [key, ids] of idsByChange)
    if (ids.size > 1) broken.push(`${key} announced by ${ids.size} different messages`);
  return broken;
}
