import { sql } from 'kysely';
import type { ProviderEventReceived } from '@billing/contracts';
import type { Static } from 'typebox';
import { CAPTURE_NEEDED, nameEventPayments, onPaymentEvents } from '@billing/billing-core';
import type { WebhookAction } from '@billing/payments';
import type { Db, ProviderEventRow } from '@billing/db';
import { afterClosed, type StepHandler, type WindowApply } from '@billing/messaging';
import type { Logger } from '@billing/service-kit';
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
      // Read (locked) when the window's messages have all been seen, naming their payments, which the
      // window locks up front; then applied together, before its receipts are numbered.
      let read: StoredEvents;
      window.prepare.push(async (trx) => {
        read = await readStoredEvents(ctx, trx, b.ids);
        for (const e of read.fresh) nameEventPayments(e.action, window.named);
      });
      window.beforeClose.push(async (trx) => {
        b.applied = await applyStoredEvents({ ...ctx, receipts: window.receipts }, trx, b.ids, read, b.loggers);
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

type StoredEvents = {
  events: ProviderEventRow[];
  /** Those not applied before, in the order the messages came, with what they say. */
  fresh: { row: ProviderEventRow; action: WebhookAction }[];
};

/** The stored webhooks of a window, their rows locked in one statement, in id order. */
async function readStoredEvents(ctx: PaymentContext, trx: Tx, ids: readonly string[]): Promise<StoredEvents> {
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
  const fresh = events
    .filter((e) => !e.processed_at)
    .sort((a, b) => order.get(a.id)! - order.get(b.id)!)
    .map((row) => ({ row, action: ctx.provider.parseWebhook(row.payload) }));
  return { events, fresh };
}

/**
 * The stored webhooks of a window applied in its transaction, once each (docs/messages.md,
 * captures in windows): billing-core's `onPaymentEvents` applies the fresh ones in the order the
 * messages came, and they are marked processed in one statement. A row applied before is not
 * applied again: an approval whose capture never happened (a crash after its commit) is captured now.
 */
async function applyStoredEvents(
  ctx: PaymentContext,
  trx: Tx,
  ids: readonly string[],
  { events, fresh: read }: StoredEvents,
  loggers: Map<string, Logger>,
): Promise<Map<string, Applied | null>> {
  const fresh = read.map((f) => f.row);
  const outcomes = await onPaymentEvents(
    ctx,
    trx,
    read.map((f) => ({ key: f.row.id, action: f.action })),
  );
  if (fresh.length)
    await sql`update provider_events set processed_at = now(), outcome = v.outcome, payment_id = v.payment_id
      from unnest(${fresh.map((e) => e.id)}::uuid[], ${fresh.map((e) => outcomes.get(e.id)!.outcome)}::text[],
        ${fresh.map((e) => outcomes.get(e.id)!.paymentId)}::uuid[]) as v(id, outcome, payment_id)
      where provider_events.id = v.id`.execute(trx);
  const applied = new Map<string, Applied | null>();
  for (const e of fresh) {
    const result = outcomes.get(e.id)!;
    applied.set(e.id, result);
    (loggers.get(e.id) ?? ctx.logger).info('provider event applied', {
      eventType: e.event_type,
      providerEventId: e.provider_event_id,
      ...result,
    });
  }
  for (const e of events)
    if (e.processed_at)
      applied.set(
        e.id,
        e.event_type === 'CHECKOUT.ORDER.APPROVED' && e.payment_id
          ? { paymentId: e.payment_id, outcome: CAPTURE_NEEDED }
          : null,
      );
  for (const id of ids) if (!applied.has(id)) applied.set(id, null); // a row that does not exist
  return applied;
}
