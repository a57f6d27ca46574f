import type { Transaction } from 'kysely';
import { SubscriptionActivated, SubscriptionRenewed } from '@billing/contracts';
import type { Database, PaymentRow, SubscriptionRow } from '@billing/db';
import { applyPaymentEvent, applySubscriptionEvent, HOLDING_MONEY, isLive, type PaymentStatus } from '@billing/domain';
import { enqueueMany } from '@billing/messaging';
import { payments } from './payments.js';
import { windowOf } from './periods.js';
import { subscriptions } from './subscriptions.js';
import { paymentReceipt, type ReceiptBatch } from './receipts.js';
import { renewalPaidMessage, renewalPaidChanges } from './renewals.js';

type Tx = Transaction<Database>;

/** A renewal (or plan change) payment and its subscription, both locked, as a window reads them. */
export interface LockedCharge {
  p: PaymentRow;
  sub: SubscriptionRow;
  /** Another payment of ours holds money for the payment's period (a payment of the same kind). */
  periodTaken: boolean;
}

/**
 * The payments of a window and their subscriptions, locked (FOR UPDATE) in two statements whatever
 * their number (docs/messages.md, windows): the payments in id order, each with whether another
 * payment holds its period, then their subscriptions in id order. Every path that takes both takes
 * the payment first, so windows and single messages lock in one order. Ids of no payment are absent.
 */
export async function lockCharges(trx: Tx, paymentIds: readonly string[]): Promise<Map<string, LockedCharge>> {
  const found = new Map<string, LockedCharge>();
  if (paymentIds.length === 0) return found;
  const rows = await trx
    .selectFrom('payments as p')
    .selectAll('p')
    .select((eb) =>
      eb
        .exists(
          eb
            .selectFrom('payments as o')
            .select('o.id')
            .whereRef('o.subscription_id', '=', 'p.subscription_id')
            .whereRef('o.period_index', '=', 'p.period_index')
            .whereRef('o.kind', '=', 'p.kind')
            .whereRef('o.id', '!=', 'p.id')
            .where('o.status', 'in', [...HOLDING_MONEY])
            .where('o.failure_reason', 'is', null),
        )
        .as('period_taken'),
    )
    .where('p.id', 'in', [...new Set(paymentIds)])
    .orderBy('p.id')
    .forUpdate()
    .execute();
  if (rows.length === 0) return found;
  const subs = await trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', 'in', [...new Set(rows.map((r) => r.subscription_id))])
    .orderBy('id')
    .forUpdate()
    .execute();
  const subById = new Map(subs.map((s) => [s.id, s]));
  for (const { period_taken, ...p } of rows)
    found.set(p.id, { p, sub: subById.get(p.subscription_id)!, periodTaken: Boolean(period_taken) });
  return found;
}

/** A renewal charge PayPal answered with a completed capture of exactly the payment's amount. */
export interface CapturedRenewal extends LockedCharge {
  orderId: string;
  captureId: string;
}

/**
 * The common case of renewal charges, set-based (docs/messages.md, windows): each payment, still
 * `created`, has been charged by PayPal with a completed capture matching it, for a period no
 * other payment holds; its subscription is live, not ending at its period end, at its full price
 * (no coupon), and appears once. Each payment goes through the machine (order created, capture
 * completed) to `completed` with its period; each subscription is paid through the period,
 * past_due or trialing back to active (`renewal_completed`); `subscription.renewed` (or
 * `.activated` for a trial's first period) is queued and the receipt added to `receipts`. Three
 * to four statements whatever the number. `fits` tells which answers qualify: the others take the
 * usual path, one at a time, with the same outcome.
 */
export async function completeRenewals(
  trx: Tx,
  items: readonly CapturedRenewal[],
  receipts: ReceiptBatch,
  publicBaseUrl?: string,
): Promise<void> {
  if (items.length === 0) return;
  const done = items.map((i) => {
    if (!fits(i)) throw new Error(`payment ${i.p.id} cannot be completed set-based`);
    const status = 'completed' as const;
    const { start, end } = windowOf(i.sub, i.p.period_index);
    const t = applySubscriptionEvent(
      { status: i.sub.status, cancelAtPeriodEnd: i.sub.cancel_at_period_end },
      { type: 'renewal_completed' },
    );
    return { ...i, status, start, end, subStatus: t?.status ?? i.sub.status, paid: renewalPaidChanges(i.sub, end) };
  });
  const paymentRows = await payments.completeMany(
    trx,
    done.map((d) => ({
      id: d.p.id,
      status: d.status,
      orderId: d.orderId,
      captureId: d.captureId,
      periodStart: d.start,
      periodEnd: d.end,
    })),
  );
  const subRows = await subscriptions.renewMany(
    trx,
    done.map((d) => ({ id: d.sub.id, status: d.subStatus, paidThrough: d.paid.paid_through })),
  );
  // The rows passed in are brought up to date, as the owners' single writes do.
  const paid = new Map(paymentRows.map((r) => [r.id, r]));
  const renewed = new Map(subRows.map((r) => [r.id, r]));
  for (const d of done) {
    Object.assign(d.p, paid.get(d.p.id));
    Object.assign(d.sub, renewed.get(d.sub.id));
  }
  const messages = done.map((d) => renewalPaidMessage(d.sub, d.p, d.start, d.end));
  await enqueueMany(
    trx,
    SubscriptionRenewed,
    messages.filter((m) => !m.first).map((m) => m.data),
  );
  await enqueueMany(
    trx,
    SubscriptionActivated,
    messages.filter((m) => m.first).map((m) => m.data),
  );
  for (const d of done) {
    const { description, message } = paymentReceipt(d.p, d.sub, undefined, publicBaseUrl);
    receipts.add(d.p, description, message);
  }
}

/** The machine's path for a charge answered with its capture: order created, then captured, to `completed`. */
function completesOnCapture(status: PaymentStatus): boolean {
  const created = applyPaymentEvent(status, { type: 'order_created' });
  const captured = created && applyPaymentEvent(created.status, { type: 'capture_completed' });
  return captured?.status === 'completed' && !captured.effects.includes('refund_in_full');
}

/** Whether `completeRenewals` takes this answer (see there). */
export function fits(i: CapturedRenewal): boolean {
  const { p, sub } = i;
  // Only a `created` payment takes both steps (the machine decides, below).
  if (p.kind !== 'renewal' || i.periodTaken) return false;
  if (p.provider_capture_id || (p.provider_order_id && p.provider_order_id !== i.orderId)) return false;
  if (!isLive(sub.status)) return false;
  if (p.amount !== sub.amount || p.amount <= 0 || sub.anchor_at === null) return false;
  if (sub.cancel_at_period_end) return false;
  return completesOnCapture(p.status);
}
