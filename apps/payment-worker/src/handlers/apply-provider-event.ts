import { sql } from 'kysely';
import type { ProviderEventReceived } from '@billing/contracts';
import type { Static } from 'typebox';
import {
  activationFits,
  CAPTURE_NEEDED,
  completeActivations,
  lockActivations,
  onPaymentEvent,
  type CapturedActivation,
} from '@billing/billing-core';
import { isUuid } from '@billing/domain';
import type { Db, ProviderEventRow } from '@billing/db';
import { afterClosed, type StepHandler, type WindowApply } from '@billing/messaging';
import type { Logger } from '@billing/service-kit';
import type { WebhookAction } from '@billing/payments';
import { captureApproved } from '../payments/capture.js';
import type { PaymentContext, Tx } from '../payments/context.js';
import { paymentWindow, type PaymentWindow } from '../payments/window.js';

export { paymentWindow, type PaymentWindow };

/**
 * `payment.provider-event.received`: a webhook the gateway stored is applied once (the event row
 * is locked and marked processed in the same transaction); an approval is captured after that commits.
 */
export function applyProviderEvent(ctx: PaymentContext): StepHandler<typeof ProviderEventReceived> {
  // A window of one: the consumer applies these in windows (docs/messages.md, windows), this is
  // the same code for one message on its own.
  return async ({ db, envelope, logger }) => {
    const window = paymentWindow.open();
    const after = await db.transaction().execute(async (trx) => {
      const then = await applyProviderEventInWindow(ctx, db)({ trx, envelope, attempt: 0, logger, window });
      await paymentWindow.close(trx, window);
      return afterClosed(then);
    });
    if (after) await after();
  };
}

/**
 * The same, as one message of a window (docs/messages.md, windows; captures in windows): the
 * window's events are applied together at its end, in its transaction, the common captures
 * set-based, their receipts numbered with the window's; the capture an approval needs is returned,
 * to run once the window committed.
 */
export function applyProviderEventInWindow(
  ctx: PaymentContext,
  db: Db,
): WindowApply<Static<(typeof ProviderEventReceived)['schema']>, PaymentWindow> {
  type Batch = { ids: string[]; loggers: Map<string, Logger>; applied: Map<string, Applied | null> };
  const batches = new WeakMap<PaymentWindow, Batch>();
  return async ({ envelope, logger, window }) => {
    const rowId = envelope.data.providerEventRowId;
    let batch = batches.get(window);
    if (!batch) {
      const b: Batch = { ids: [], loggers: new Map(), applied: new Map() };
      batches.set(window, b);
      // Applied together when the window's messages have all been seen, before its receipts are numbered.
      window.beforeClose.push(async (trx) => {
        b.applied = await applyStoredEvents({ ...ctx, receipts: window.receipts }, window, trx, b.ids, b.loggers);
      });
      batch = b;
    }
    batch.ids.push(rowId);
    batch.loggers.set(rowId, logger);
    // Known once the window closed: only an approval leaves something to do after the commit.
    return {
      afterClose: () => {
        if (!batch.applied.has(rowId)) throw new Error(`provider event ${rowId} was not applied in its window`);
        const paymentId = batch.applied.get(rowId)?.paymentId;
        if (paymentId && batch.applied.get(rowId)?.outcome === CAPTURE_NEEDED)
          return () => capture(ctx, db, paymentId, logger);
      },
    };
  };
}

type Applied = { paymentId: string | null; outcome: string };

async function capture(ctx: PaymentContext, db: Db, paymentId: string, logger: Logger): Promise<void> {
  logger.info('order captured', { paymentId, outcome: await captureApproved(ctx, db, paymentId) });
}

/**
 * The stored webhooks of a window applied in its transaction, once each (docs/messages.md,
 * captures in windows): their rows locked in one statement; PayPal's completed captures of the
 * common case recorded set-based by billing-core's `completeActivations` and marked in one
 * statement; every other event one at a time, in the order the messages came.
 */
async function applyStoredEvents(
  ctx: PaymentContext,
  window: PaymentWindow,
  trx: Tx,
  ids: readonly string[],
  loggers: Map<string, Logger>,
): Promise<Map<string, Applied | null>> {
  const applied = new Map<string, Applied | null>();
  const events = await trx
    .selectFrom('provider_events')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .orderBy('id')
    .forUpdate()
    .execute();
  // In the order the messages came (receipts are numbered in it), the rows locked in id order.
  const order = new Map<string, number>();
  ids.forEach((id, i) => order.has(id) || order.set(id, i));
  const actions = events
    .filter((e) => !e.processed_at)
    .sort((a, b) => order.get(a.id)! - order.get(b.id)!)
    .map((e) => ({ event: e, action: ctx.provider.parseWebhook(e.payload) }));
  const captures = actions.flatMap(({ event, action }) =>
    action.kind === 'capture_completed' && action.capture.customId && isUuid(action.capture.customId)
      ? [{ event, capture: action.capture, orderId: action.orderId, paymentId: action.capture.customId }]
      : [],
  );
  if (captures.length) {
    const locked = await lockActivations(
      trx,
      captures.map((c) => c.paymentId),
    );
    // A payment, order or capture that more than one event of the window names goes the usual way.
    const named = new Map<string, number>();
    for (const { action } of actions) for (const ref of refsOf(action)) named.set(ref, (named.get(ref) ?? 0) + 1);
    const once = (ref: string | null) => ref === null || (named.get(ref) ?? 0) <= 1;
    const fitting = captures.flatMap((c) => {
      const l = locked.get(c.paymentId);
      const item: CapturedActivation | undefined = l && { ...l, capture: c.capture, orderId: c.orderId };
      return item && activationFits(item) && once(item.p.id) && once(item.p.provider_order_id) && once(c.capture.id)
        ? [{ ...c, item }]
        : [];
    });
    if (fitting.length) {
      await completeActivations(
        trx,
        fitting.map((f) => f.item),
        window.receipts,
        ctx.publicBaseUrl,
      );
      await sql`update provider_events set processed_at = now(), outcome = 'activated', payment_id = v.payment_id
        from unnest(${fitting.map((f) => f.event.id)}::uuid[], ${fitting.map((f) => f.paymentId)}::uuid[])
          as v(id, payment_id)
        where provider_events.id = v.id`.execute(trx);
      for (const f of fitting) {
        applied.set(f.event.id, { paymentId: f.paymentId, outcome: 'activated' });
        (loggers.get(f.event.id) ?? ctx.logger).info('provider event applied', {
          eventType: f.event.event_type,
          providerEventId: f.event.provider_event_id,
          paymentId: f.paymentId,
          outcome: 'activated',
        });
      }
    }
  }
  // The rest, from the rows and actions read above (a message naming a row twice is applied once).
  const rows = new Map(events.map((e) => [e.id, e]));
  const parsed = new Map(actions.map((a) => [a.event.id, a.action]));
  for (const id of ids)
    if (!applied.has(id))
      applied.set(id, await applyEvent(ctx, trx, rows.get(id), parsed.get(id), loggers.get(id) ?? ctx.logger));
  return applied;
}

/** The payment, order and capture ids a webhook names. */
function refsOf(action: WebhookAction): string[] {
  switch (action.kind) {
    case 'order_approved':
    case 'order_voided':
    case 'vault_token_created':
      return [action.customId, action.orderId].filter((r): r is string => Boolean(r));
    case 'capture_completed':
    case 'capture_pending':
    case 'capture_declined':
      return [action.capture.customId, action.orderId, action.capture.id].filter((r): r is string => Boolean(r));
    case 'capture_refunded':
      return [action.captureId, action.customId].filter((r): r is string => Boolean(r));
    case 'capture_reversed':
      return [action.captureId];
    default:
      return [];
  }
}

/**
 * A stored webhook applied in the caller's transaction, once: its row, locked by the caller (none:
 * an unknown row), is marked processed; `action` is its payload as parsed already, if it was.
 */
async function applyEvent(
  ctx: PaymentContext,
  trx: Tx,
  event: ProviderEventRow | undefined,
  action: WebhookAction | undefined,
  logger: Logger,
): Promise<Applied | null> {
  if (!event) return null;
  if (event.processed_at) {
    // Applied before; an approval whose capture never happened (a crash after this step) is captured now.
    return event.event_type === 'CHECKOUT.ORDER.APPROVED' && event.payment_id
      ? { paymentId: event.payment_id, outcome: CAPTURE_NEEDED }
      : null;
  }
  const result = await onPaymentEvent(ctx, trx, action ?? ctx.provider.parseWebhook(event.payload));
  await trx
    .updateTable('provider_events')
    .set({ processed_at: sql`now()`, outcome: result.outcome, payment_id: result.paymentId })
    .where('id', '=', event.id)
    .execute();
  logger.info('provider event applied', {
    eventType: event.event_type,
    providerEventId: event.provider_event_id,
    ...result,
  });
  return result;
}
