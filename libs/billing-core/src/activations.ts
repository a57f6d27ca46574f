import type { Transaction } from 'kysely';
import { SubscriptionActivated, SubscriptionCancelled } from '@billing/contracts';
import type { Database, PaymentRow, SubscriptionRow } from '@billing/db';
import { applyPaymentEvent, applySubscriptionEvent, periodWindow } from '@billing/domain';
import { enqueue, enqueueMany } from '@billing/messaging';
import { cancelledMessage } from './cancel.js';
import { endSubscriptionGrant, startSubscriptionGrant, startSubscriptionGrants } from './grants.js';
import { payments } from './payments.js';
import { paymentReceipt, type ReceiptBatch } from './receipts.js';
import { requestRefund } from './refunds.js';
import { aboutSubscription, subscriptions } from './subscriptions.js';
import { vaultRevoked } from './vaults.js';

// Where a first payment completed becomes an active subscription: one at a time
// (`activateSubscription`, for PayPal's answer to our capture and every case the set form does not
// take) and set-based for a window of PayPal's capture webhooks (`completeActivations`).

type Tx = Transaction<Database>;

/** A first payment and its subscription, both locked, as a window of captures reads them. */
export interface LockedActivation {
  p: PaymentRow;
  sub: SubscriptionRow;
  /** The subscription holds a grant of ours that has not ended. */
  liveGrant: boolean;
  /** The user has another subscription for the same role that is past_due (an activation replaces it). */
  pastDueSibling: boolean;
}

/** What PayPal's capture says, as the window compares it with the payment. */
export interface CaptureSeen {
  id: string;
  status: string;
  amount: number;
  currency: string;
  customId: string | null;
}

/** A capture PayPal reported for a payment the window locked. */
export interface CapturedActivation extends LockedActivation {
  capture: CaptureSeen;
  /** The order PayPal names, when it names one. */
  orderId: string | null;
}

/** `subscription.activated`'s data: the subscription's first period, from `start` to `end`. */
export function activatedMessage(sub: SubscriptionRow, start: Date, end: Date) {
  return {
    ...aboutSubscription(sub),
    amount: sub.amount,
    currency: sub.currency,
    currentPeriodStart: start.toISOString(),
    currentPeriodEnd: end.toISOString(),
  };
}

/** What a completed first payment did to its subscription. */
export type ActivationOutcome = 'activated' | 'completed' | 'refunded: subscription ended';

/**
 * The first payment completed (the caller has taken it to `completed` through the machine): the
 * subscription starts (anchored now, paid through its first period, the approval link cleared, the
 * wallet kept when PayPal saved one), the role is granted, the buyer told, and a past_due
 * subscription granting the same role is replaced. A subscription that ended meanwhile keeps
 * nothing: the payment is refunded whole. One at a time; `completeActivations` is the same, set-based.
 */
export async function activateSubscription(
  trx: Tx,
  p: PaymentRow,
  savedVaultId: string | null,
): Promise<ActivationOutcome> {
  // A wallet the buyer deleted meanwhile is not kept (docs/webhooks.md): the renewal asks for a method.
  const vaultId = savedVaultId && !(await vaultRevoked(trx, savedVaultId)) ? savedVaultId : null;
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  const anchor = new Date();
  const { start, end } = periodWindow(anchor, sub.period, 0);
  const s = await subscriptions.transition(
    trx,
    sub,
    { type: 'initial_payment_completed' },
    { anchor_at: anchor, paid_through: end, approval_url: null, ...(vaultId ? { vault_id: vaultId } : {}) },
  );
  if (s?.effects.includes('refund_payment')) {
    await requestRefund(trx, p, p.amount, 'late_capture', `the subscription is ${sub.status}`);
    return 'refunded: subscription ended';
  }
  if (!s?.effects.includes('grant_starts')) return 'completed';
  await payments.record(trx, p, { period_start: start, period_end: end });
  await startSubscriptionGrant(trx, sub, 'subscription activated');
  await enqueue(trx, SubscriptionActivated, activatedMessage(sub, start, end));
  await replacePastDue(trx, sub, anchor);
  return 'activated';
}

/** A past_due subscription granting the same role is replaced by a new one, without refund (docs/api.md). */
export async function replacePastDue(trx: Tx, sub: SubscriptionRow, anchor: Date): Promise<void> {
  const pastDue = await trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('user_id', '=', sub.user_id)
    .where('role', '=', sub.role)
    .where('status', '=', 'past_due')
    .where('id', '!=', sub.id)
    .forUpdate()
    .execute();
  for (const old of pastDue) {
    const r = await subscriptions.transition(
      trx,
      old,
      { type: 'replaced' },
      { cancelled_at: anchor, next_retry_at: null },
    );
    if (r?.effects.includes('grant_ends')) await endSubscriptionGrant(trx, old, 'replaced by a new subscription');
    if (r) await enqueue(trx, SubscriptionCancelled, cancelledMessage(old, anchor, 0));
  }
}

/**
 * The payments of a window of captures and their subscriptions, locked (FOR UPDATE) in two
 * statements whatever their number (docs/messages.md, captures in windows): the payments in id
 * order, then their subscriptions in id order, each with whether it holds a live grant and
 * whether its user has a past_due subscription for the same role. Ids of no payment are absent.
 */
export async function lockActivations(trx: Tx, paymentIds: readonly string[]): Promise<Map<string, LockedActivation>> {
  const found = new Map<string, LockedActivation>();
  if (paymentIds.length === 0) return found;
  const rows = await trx
    .selectFrom('payments')
    .selectAll()
    .where('id', 'in', [...new Set(paymentIds)])
    .orderBy('id')
    .forUpdate()
    .execute();
  if (rows.length === 0) return found;
  const subs = await trx
    .selectFrom('subscriptions as s')
    .selectAll('s')
    .select((eb) => [
      eb
        .exists(
          eb
            .selectFrom('role_grants as g')
            .select('g.id')
            .whereRef('g.subscription_id', '=', 's.id')
            .where('g.ended_at', 'is', null),
        )
        .as('live_grant'),
      eb
        .exists(
          eb
            .selectFrom('subscriptions as o')
            .select('o.id')
            .whereRef('o.user_id', '=', 's.user_id')
            .whereRef('o.role', '=', 's.role')
            .whereRef('o.id', '!=', 's.id')
            .where('o.status', '=', 'past_due'),
        )
        .as('past_due_sibling'),
    ])
    .where('s.id', 'in', [...new Set(rows.map((r) => r.subscription_id))])
    .orderBy('s.id')
    .forUpdate()
    .execute();
  const subById = new Map(
    subs.map(({ live_grant, past_due_sibling, ...s }) => [
      s.id,
      { sub: s, liveGrant: Boolean(live_grant), pastDueSibling: Boolean(past_due_sibling) },
    ]),
  );
  for (const p of rows) {
    const s = subById.get(p.subscription_id)!;
    found.set(p.id, { p, ...s });
  }
  return found;
}

/**
 * Whether `completeActivations` takes this capture: a COMPLETED capture of exactly the payment's
 * id, amount and currency, for a first payment the machine takes to `completed` (its order known,
 * no other capture recorded), whose subscription is `pending` at full price (no coupon) with no
 * past_due subscription to replace. The caller also keeps out a payment named twice in its window.
 */
export function activationFits(i: CapturedActivation): boolean {
  const { p, sub, capture } = i;
  if (capture.status !== 'COMPLETED' || capture.customId !== p.id) return false;
  if (capture.amount !== p.amount || capture.currency !== p.currency) return false;
  if (p.kind !== 'initial' || p.provider_order_id === null) return false;
  if (i.orderId !== null && i.orderId !== p.provider_order_id) return false;
  if (p.provider_capture_id !== null && p.provider_capture_id !== capture.id) return false;
  if (p.amount <= 0 || p.amount !== sub.amount || i.pastDueSibling) return false;
  const paid = applyPaymentEvent(p.status, { type: 'capture_completed' });
  if (paid?.status !== 'completed' || paid.effects.includes('refund_in_full')) return false;
  const started = applySubscriptionEvent(
    { status: sub.status, cancelAtPeriodEnd: sub.cancel_at_period_end },
    { type: 'initial_payment_completed' },
  );
  return started !== null && started.effects.includes('grant_starts');
}

/**
 * The common case of a window's captures, set-based (docs/messages.md, captures in windows): each
 * payment goes through the machine to `completed` with its capture and its first period; each
 * subscription to `active`, anchored now and paid through that period, its approval link cleared;
 * the grants the subscriptions lack are inserted and `role.change.requested` and
 * `subscription.activated` queued; the receipts are added to `receipts`. Six statements whatever
 * the number; the rows passed in are brought up to date. `activationFits` tells which captures
 * qualify: the others take the usual path, one at a time, with the same outcome.
 */
export async function completeActivations(
  trx: Tx,
  items: readonly CapturedActivation[],
  receipts: ReceiptBatch,
  publicBaseUrl?: string,
): Promise<void> {
  if (items.length === 0) return;
  const anchor = new Date();
  const done = items.map((i) => {
    if (!activationFits(i)) throw new Error(`payment ${i.p.id} cannot be completed set-based`);
    const paid = applyPaymentEvent(i.p.status, { type: 'capture_completed' })!;
    const started = applySubscriptionEvent(
      { status: i.sub.status, cancelAtPeriodEnd: i.sub.cancel_at_period_end },
      { type: 'initial_payment_completed' },
    )!;
    return { ...i, paid, started, ...periodWindow(anchor, i.sub.period, 0) };
  });
  const paymentRows = await payments.completeMany(
    trx,
    done.map((d) => ({
      id: d.p.id,
      status: d.paid.status,
      orderId: d.p.provider_order_id!,
      captureId: d.capture.id,
      periodStart: d.start,
      periodEnd: d.end,
    })),
  );
  const subRows = await subscriptions.activateMany(
    trx,
    done.map((d) => ({
      id: d.sub.id,
      status: d.started.status,
      cancelAtPeriodEnd: d.started.cancelAtPeriodEnd,
      anchorAt: anchor,
      paidThrough: d.end,
    })),
  );
  const paidById = new Map(paymentRows.map((r) => [r.id, r]));
  const startedById = new Map(subRows.map((r) => [r.id, r]));
  for (const d of done) {
    Object.assign(d.p, paidById.get(d.p.id));
    Object.assign(d.sub, startedById.get(d.sub.id));
  }
  await startSubscriptionGrants(
    trx,
    done.map((d) => ({ sub: d.sub, live: d.liveGrant })),
    'subscription activated',
  );
  await enqueueMany(
    trx,
    SubscriptionActivated,
    done.map((d) => activatedMessage(d.sub, d.start, d.end)),
  );
  for (const d of done) {
    const { description, message } = paymentReceipt(d.p, d.sub, undefined, publicBaseUrl);
    receipts.add(d.p, description, message);
  }
}
