import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, SubscriptionRow } from '@billing/db';
import { PaymentCheckRequested } from '@billing/contracts';
import { enqueue } from '@billing/messaging';
import type { SubscriptionTransition } from '@billing/domain';
import { CouponNotApplicable, redeemCoupon, withCoupon } from './coupons.js';
import { roleHeldBefore } from './grants.js';
import { lockKey } from './locks.js';
import { paymentMethodRequests } from './payment-method-requests.js';
import { payments } from './payments.js';
import { subscriptions } from './subscriptions.js';
import { endPendingCheckout, hadTrial } from './trials.js';

// The use case "a buyer starts a subscription" (docs/architecture.md, use cases; docs/api.md,
// POST /v1/subscriptions): `openCheckout` decides and writes under the user's lock and says what
// is due; the caller asks PayPal for an order (or a vault setup token when nothing is charged now)
// and hands the answer back: `checkoutOrderCreated`, `vaultCheckoutOpened`, or `checkoutRefusedAtProvider`.

type Tx = Transaction<Database>;

/** A paid checkout with nothing to look up: no trial, no coupon, a role the user did not hold. */
export interface PlainCheckout {
  subscriptionId: string;
  paymentId: string;
  userId: string;
  plan: { id: string; name: string; role: string; amount: number; currency: string; period: string };
}

/**
 * The common checkout in one statement, with no transaction and no lock (docs/api.md, how step 2 is
 * written): the subscription and its first payment are written only if the user has no pending,
 * trialing, active or paused subscription granting the plan's role. A checkout of the same user
 * racing it for the role meets the unique index on pending subscriptions: this insert then writes
 * nothing. Returns false with nothing written when such a subscription exists: the caller then goes
 * the long way (already subscribed, an approved checkout in progress, older checkouts replaced).
 * Each table's INSERT comes from its owner.
 */
export async function openPlainCheckout(trx: Kysely<Database>, c: PlainCheckout): Promise<boolean> {
  const sub = subscriptions.insertPendingIfNone({ id: c.subscriptionId, userId: c.userId, plan: c.plan });
  const payment = payments.insertInitialFor('written', {
    id: c.paymentId,
    userId: c.userId,
    amount: c.plan.amount,
    currency: c.plan.currency,
  });
  const { rows } = await sql<{
    id: string;
  }>`with written as (${sub}), paid as (${payment}) select id from paid`.execute(trx);
  return rows.length === 1;
}

/**
 * PayPal's order for a checkout recorded in one statement, no transaction (docs/api.md, `POST
 * /v1/subscriptions`): the payment moves to `pending` with the order's id and approval link only if
 * it is still `created` (a compare and set through the machine), and the subscription keeps the
 * approval link either way. 'moved' when the payment was no longer `created` (a webhook came
 * first): the caller then records under the payment's lock.
 */
export async function recordCheckoutOrder(
  db: Kysely<Database>,
  o: { paymentId: string; subscriptionId: string; orderId: string; approvalUrl: string },
): Promise<'recorded' | 'moved'> {
  const payment = payments.updateIfStill(
    db,
    o.paymentId,
    'created',
    { type: 'order_created' },
    { provider_order_id: o.orderId, approval_url: o.approvalUrl },
  );
  const subscription = subscriptions.updateById(db, o.subscriptionId, { approval_url: o.approvalUrl });
  const { rows } = await sql<{
    n: number;
  }>`with p as (${payment}), s as (${subscription}) select (select count(*) from p)::int as n`.execute(db);
  return rows[0]!.n === 1 ? 'recorded' : 'moved';
}

/**
 * A checkout that never became a subscription (its first payment failed, was refused, abandoned
 * or expired; a trial refused): the pending subscription is cancelled at `at`, its approval link
 * cleared (docs/api.md: `approvalUrl` only while pending) and its coupon redemption given back.
 * The one way a checkout ends; null when it was no longer pending.
 */
export async function endCheckout(
  trx: Tx,
  sub: SubscriptionRow,
  at: Date = new Date(),
): Promise<SubscriptionTransition | null> {
  return subscriptions.transition(
    trx,
    sub,
    { type: 'initial_payment_failed' },
    { cancelled_at: at, approval_url: null },
  );
}

/** Why a checkout is refused before anything is written: the API's problem code and its message. */
export class CheckoutRefused extends Error {
  constructor(
    readonly code: 'already-subscribed' | 'checkout-in-progress' | 'coupon-not-applicable',
    message: string,
  ) {
    super(message);
  }
}

/** A buyer's checkout: the ids it will write, the plan, the coupon, and the user's roles at the Auth service. */
export interface CheckoutRequest extends PlainCheckout {
  plan: PlainCheckout['plan'] & { trial_period: string | null };
  couponCode?: string;
  /** The user's roles read from the Auth service at `rolesReadAt`, before this transaction. */
  roles: readonly string[];
  rolesReadAt: Date;
}

/**
 * What the checkout asks of PayPal: `paid`, an order for `amount`; `trial`, a wallet saved for the
 * charge at the trial's end; `free`, a wallet saved for the renewals, the first period (its
 * payment of 0) paid when it is.
 */
export type CheckoutOpened = { due: 'paid'; amount: number } | { due: 'trial' | 'free'; amount: 0 };

/**
 * Opens a checkout in one transaction under the user's lock: the usual case (no trial, no coupon,
 * a role not held) is one statement (`openPlainCheckout`); otherwise a live subscription for the
 * role refuses it, an approved checkout in progress refuses it, older unfinished checkouts for the
 * role are replaced, a trial is given once per user and role, and a coupon is redeemed (exactly,
 * under concurrency). Throws `CheckoutRefused` with nothing written.
 */
export async function openCheckout(db: Kysely<Database>, c: CheckoutRequest): Promise<CheckoutOpened> {
  const { plan } = c;
  const plain = plan.trial_period === null && !c.couponCode && !c.roles.includes(plan.role) && plan.amount > 0;
  if (plain && (await openPlainCheckout(db, c))) return { due: 'paid', amount: plan.amount };
  // The long way. A common checkout of the same user may commit its pending row between this
  // transaction's look and its insert (it takes no lock): the unique index refuses ours, and the
  // transaction runs again, replacing that row as any unfinished checkout (docs/api.md).
  for (let run = 1; ; run++) {
    try {
      return await openCheckoutLongWay(db, c);
    } catch (err) {
      if (run >= 3 || (err as { constraint?: string }).constraint !== 'subscriptions_one_pending_per_role') throw err;
    }
  }
}

async function openCheckoutLongWay(db: Kysely<Database>, c: CheckoutRequest): Promise<CheckoutOpened> {
  const { plan, userId } = c;
  return db.transaction().execute(async (trx): Promise<CheckoutOpened> => {
    await lockKey(trx, `user:${userId}`);
    await replaceUnfinished(trx, userId, plan.role);
    // One trial per user and role (docs/api.md, free trials): one who has had one buys a normal paid checkout.
    const trial = plan.trial_period !== null && !(await hadTrial(trx, userId, plan.role));
    await subscriptions.create(trx, {
      id: c.subscriptionId,
      user_id: userId,
      plan_id: plan.id,
      plan_name: plan.name,
      role: plan.role,
      amount: plan.amount,
      currency: plan.currency,
      period: plan.period,
      role_held_before: await roleHeldBefore(trx, userId, plan.role, [...c.roles], c.rolesReadAt),
      trial_period: trial ? plan.trial_period : null,
    });
    let amount = plan.amount;
    if (c.couponCode) {
      // One conditional UPDATE decides (exact under concurrency); a refusal rolls all of this back.
      const coupon = await redeemCoupon(trx, c.couponCode, {
        currency: plan.currency,
        userId,
        subscriptionId: c.subscriptionId,
      }).catch((err: unknown) => {
        if (err instanceof CouponNotApplicable) throw new CheckoutRefused('coupon-not-applicable', err.message);
        throw err;
      });
      amount = withCoupon(plan.amount, coupon, 0);
    }
    // A trial charges nothing now: its first period is charged at the trial's end, like a renewal.
    if (trial) return { due: 'trial', amount: 0 };
    await payments.create(trx, {
      id: c.paymentId,
      subscription_id: c.subscriptionId,
      user_id: userId,
      kind: 'initial',
      amount,
      currency: plan.currency,
      period_index: 0,
      attempt: 0,
    });
    // A coupon that makes the first period free: nothing to charge, but a wallet for the renewals.
    return amount === 0 ? { due: 'free', amount: 0 } : { due: 'paid', amount };
  });
}

/** The user's live subscriptions for the role refuse a checkout; pending ones (not yet approved) are replaced. */
async function replaceUnfinished(trx: Tx, userId: string, role: string): Promise<void> {
  const same = await trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('role', '=', role)
    .where('status', 'in', ['pending', 'trialing', 'active', 'paused'])
    .forUpdate()
    .execute();
  if (same.some((s) => s.status === 'active' || s.status === 'trialing'))
    throw new CheckoutRefused('already-subscribed', `an active subscription already grants the role "${role}"`);
  if (same.some((s) => s.status === 'paused'))
    throw new CheckoutRefused(
      'already-subscribed',
      `a paused subscription grants the role "${role}" once resumed; resume it instead`,
    );
  const pending = same.filter((s) => s.status === 'pending');
  if (!pending.length) return;
  const pendingIds = pending.map((s) => s.id);
  const approved = await trx
    .selectFrom('payments')
    .select('id')
    .where('subscription_id', 'in', pendingIds)
    .where('status', '=', 'approved')
    .executeTakeFirst();
  if (approved)
    throw new CheckoutRefused(
      'checkout-in-progress',
      'an earlier checkout for this role is already approved and being captured',
    );
  // The new purchase replaces older unfinished checkouts for the same role.
  const open = await trx
    .selectFrom('payments')
    .selectAll()
    .where('subscription_id', 'in', pendingIds)
    .where('status', 'in', ['created', 'pending'])
    .forUpdate()
    .execute();
  for (const p of open) await payments.transition(trx, p, { type: 'superseded' });
  for (const older of pending)
    await subscriptions.transition(trx, older, { type: 'replaced' }, { cancelled_at: new Date(), approval_url: null });
}

/**
 * PayPal created the checkout's order: recorded in one statement (`recordCheckoutOrder`), or, when
 * a webhook moved the payment on first, under the payment's lock, keeping only PayPal's ids.
 */
export async function checkoutOrderCreated(
  db: Kysely<Database>,
  o: { paymentId: string; subscriptionId: string; orderId: string; approvalUrl: string },
): Promise<void> {
  if ((await recordCheckoutOrder(db, o)) === 'recorded') return;
  const order = { provider_order_id: o.orderId, approval_url: o.approvalUrl };
  await db.transaction().execute(async (trx) => {
    const p = (await payments.lock(trx, { id: o.paymentId }))!;
    if (!(await payments.transition(trx, p, { type: 'order_created' }, order))) await payments.record(trx, p, order);
  });
}

/**
 * PayPal refused or could not be reached when asked for the checkout's order (`paymentId`, the
 * payment it was for) or its setup token (`paymentId` null): the checkout ends (the payment failed
 * with `provider_error`; the subscription cancelled, the coupon given back). Nothing was charged.
 */
export async function checkoutRefusedAtProvider(
  db: Kysely<Database>,
  c: { subscriptionId: string; paymentId: string | null },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const event = { type: 'provider_failed', reason: 'provider_error' } as const;
    if (!c.paymentId) return void (await endPendingCheckout(trx, c.subscriptionId, event));
    // The order may exist at PayPal all the same (a timeout): the payment fails whatever it reached.
    const p = await payments.lock(trx, { id: c.paymentId });
    if (p && (await payments.transition(trx, p, event)))
      await endCheckout(trx, await subscriptions.lockOrThrow(trx, c.subscriptionId));
  });
}

/** A checkout with nothing charged now got PayPal's setup token: the wallet request and the approval link. */
export async function vaultCheckoutOpened(
  db: Kysely<Database>,
  v: { subscriptionId: string; userId: string; setupTokenId: string; approvalUrl: string },
): Promise<void> {
  await Promise.all([
    paymentMethodRequests.open(db, {
      id: randomUUID(),
      subscriptionId: v.subscriptionId,
      userId: v.userId,
      setupTokenId: v.setupTokenId,
    }),
    subscriptions.recordById(db, v.subscriptionId, { approval_url: v.approvalUrl }),
  ]);
}

/**
 * The buyer gave up at PayPal (docs/api.md, `GET /v1/checkout/cancel`, naming the order): only an
 * order still waiting for the buyer ends, with its checkout; an approved one is being captured.
 * Whether it ended.
 */
export async function checkoutCancelledByBuyer(db: Kysely<Database>, orderId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const payment = await payments.lock(trx, { orderId });
    if (!payment || payment.status !== 'pending') return false;
    if (!(await payments.transition(trx, payment, { type: 'buyer_cancelled' }))) return false;
    await endCheckout(trx, await subscriptions.lockOrThrow(trx, payment.subscription_id));
    return true;
  });
}

/**
 * The buyer is back from PayPal with an order: when it is ours, the payment-worker is asked to look
 * it up and capture it (`PaymentCheckRequested`), so a late webhook does not hold the buyer up
 * (docs/api.md, the return URL). False for an order of nobody.
 */
export async function buyerReturned(db: Kysely<Database>, orderId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const payment = await trx
      .selectFrom('payments')
      .select('id')
      .where('provider_order_id', '=', orderId)
      .executeTakeFirst();
    if (payment) await enqueue(trx, PaymentCheckRequested, { orderId, source: 'return_url' });
    return payment !== undefined;
  });
}
