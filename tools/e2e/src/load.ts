import { HOLDING_MONEY } from '@billing/domain';
import type { AppName, Stack } from './stack.js';

/** A buyer whose checkout is waiting for approval at the PayPal stand-in. */
export interface Buyer {
  userId: string;
  orderId: string;
  subscriptionId: string;
}

/** Checkouts through billing-api for `n` new users, `parallel` at a time; their PayPal order ids. */
export async function checkouts(
  stack: Stack,
  prefix: string,
  n: number,
  { planId = 'pro-monthly', parallel = 10 }: { planId?: string; parallel?: number } = {},
): Promise<Buyer[]> {
  const out: Buyer[] = new Array(n);
  // `parallel` checkouts in flight at all times: each lane takes the next index as soon as its last
  // ends; once one has failed, the others take no more.
  let next = 0;
  let failed = false;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) {
      if (failed) return;
      const userId = `${prefix}-${i}`;
      const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await stack.tokenFor(userId)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ planId }),
      });
      if (res.status !== 201) throw new Error(`checkout ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { approvalUrl: string; subscriptionId: string };
      out[i] = {
        userId,
        orderId: new URL(body.approvalUrl).searchParams.get('token')!,
        subscriptionId: body.subscriptionId,
      };
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, () =>
      lane().catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  return out;
}

/** Messages an app's consumer settled with `outcome`, read from its own /metrics. */
export async function consumed(url: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [
    ...text.matchAll(new RegExp(`^messages_consumed_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'gm')),
  ].reduce((s, m) => s + Number(m[1]), 0);
}

/** Messages the workers sent round a retry queue (a failure) or back for an outage, so far. */
export async function workerRetries(stack: Stack): Promise<{ retried: number; requeued: number }> {
  const apps: AppName[] = ['payment-worker', 'role-worker'];
  const [retried, requeued] = await Promise.all(
    ['retried', 'requeued'].map(async (o) =>
      (await Promise.all(apps.map((a) => consumed(stack.urls[a], o)))).reduce((x, y) => x + y, 0),
    ),
  );
  return { retried: retried!, requeued: requeued! };
}

/** When the Auth stand-in first answered 2xx to granting each of `users` a role (ms since the epoch). */
export async function grantedAt(stack: Stack, users: Set<string>): Promise<Map<string, number>> {
  const calls = (await stack.auth('/_control/calls')) as { at: string; method: string; path: string; status: number }[];
  const at = new Map<string, number>();
  for (const c of calls) {
    if (c.method !== 'POST' || c.status < 200 || c.status >= 300) continue;
    const user = /\/api\/v1\/users\/([^/]+)\/roles$/.exec(c.path)?.[1];
    const id = user ? decodeURIComponent(user) : undefined;
    if (id && users.has(id) && !at.has(id)) at.set(id, Date.parse(c.at));
  }
  return at;
}

/**
 * Approves `buyers` at the PayPal stand-in (it then sends PayPal's webhooks), `perSecond` a second
 * in ticks of 100 ms, whatever the pipeline does meanwhile; when each was approved.
 */
export async function approveAtRate(stack: Stack, buyers: Buyer[], perSecond: number): Promise<Map<string, number>> {
  const approvedAt = new Map<string, number>();
  const started = Date.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < buyers.length; i++) {
    const due = started + (i * 1000) / perSecond;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const b = buyers[i]!;
    approvedAt.set(b.userId, Date.now());
    pending.push(stack.paypal(`/_control/orders/${b.orderId}/approve`, {}));
  }
  await Promise.all(pending);
  return approvedAt;
}

/** The q-quantile of `xs` (sorted here). */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

/**
 * What the outside world saw of these buyers: captures per PayPal order (exactly one each is
 * right), and per subscription and period, how many payments hold money (at most one).
 */
export async function capturesOf(stack: Stack, buyers: Buyer[]) {
  const captures = (await stack.paypal('/_control/captures')) as { orderId: string; status: string }[];
  const orders = new Set(buyers.map((b) => b.orderId));
  const perOrder = new Map<string, number>();
  for (const c of captures) if (orders.has(c.orderId)) perOrder.set(c.orderId, (perOrder.get(c.orderId) ?? 0) + 1);
  const periods = await stack.tdb.db
    .selectFrom('payments')
    .select(['subscription_id', 'period_index', (eb) => eb.fn.countAll<string>().as('n')])
    .where(
      'subscription_id',
      'in',
      buyers.map((b) => b.subscriptionId),
    )
    .where('status', 'in', [...HOLDING_MONEY])
    .where('failure_reason', 'is', null)
    .groupBy(['subscription_id', 'period_index'])
    .execute();
  return {
    capturedOrders: perOrder.size,
    capturedTwice: [...perOrder.values()].filter((n) => n > 1).length,
    paidPeriods: periods.length,
    periodsPaidTwice: periods.filter((p) => Number(p.n) > 1).length,
  };
}
