import { sql } from 'kysely';
import {
  PaymentCheckRequested,
  PaymentMethodApproved,
  ProviderEventReceived,
  RenewalChargeRequested,
} from '@billing/contracts';
import type { Db } from '@billing/db';
import { paymentMethodRequests, payments, unsentPaymentExpired } from '@billing/billing-core';
import { OPEN_PAYMENT_STATUSES } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import type { Job } from '../runner.js';

/**
 * docs/scheduler.md reconciliation: a payment created, pending or approved for RECONCILE_AFTER_MS is
 * looked up at PayPal by the payment-worker and moved on, so a lost webhook loses nothing; past
 * CHECKOUT_TTL_MS an unapproved checkout is cancelled (`checkout_expired`), an approved one captured.
 */
export function reconciliationJob(db: Db, reconcileAfterMs: number, checkoutTtlMs: number): Job {
  return {
    name: 'reconciliation',
    async run(now) {
      const stale = new Date(now.getTime() - reconcileAfterMs);
      const ttl = new Date(now.getTime() - checkoutTtlMs);
      let done = 0;
      for (;;) {
        const n = await db.transaction().execute(async (trx) => {
          const due = await trx
            .selectFrom('payments')
            .selectAll()
            .where('status', 'in', [...OPEN_PAYMENT_STATUSES])
            .where('updated_at', '<=', stale)
            .limit(200)
            .forUpdate()
            .skipLocked()
            .execute();
          for (const p of due) {
            // A checkout waits for its buyer until CHECKOUT_TTL_MS; a renewal has no buyer to wait for:
            // once stale, an order still wanting the payer's action is ended and dunning takes over.
            const expired = p.kind === 'initial' ? p.created_at <= ttl : true;
            if (p.provider_order_id) {
              await enqueue(trx, PaymentCheckRequested, {
                orderId: p.provider_order_id,
                source: 'reconciliation',
                expireUnapproved: expired,
              });
            } else if (p.kind === 'renewal') {
              await enqueue(trx, RenewalChargeRequested, { paymentId: p.id });
            } else if (p.kind === 'upgrade' || expired) {
              // Never reached PayPal, so nothing to look up: a plan change's charge fails alone (the buyer
              // is told and may ask again), a checkout ends.
              await unsentPaymentExpired(trx, p, now);
            }
            await payments.touch(trx, p.id, now);
          }
          return due.length;
        });
        done += n;
        if (n < 200) break;
      }
      done += await reconcileSetupTokens(db, now, stale, ttl);
      done += await sweepUnprocessedEvents(db, stale);
      return { due: done, claimed: done, succeeded: done, failed: 0 };
    },
  };
}

/**
 * docs/api.md, free trials: a wallet being saved (a trial checkout, a payment-method replacement) whose buyer
 * was not seen coming back within RECONCILE_AFTER_MS is looked up at PayPal by the payment-worker:
 * approved, it is saved as on the return; past CHECKOUT_TTL_MS unapproved, the request ends (and a
 * trial checkout with it). Touched when handed over, so each is asked about once per RECONCILE_AFTER_MS.
 */
async function reconcileSetupTokens(db: Db, now: Date, stale: Date, ttl: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('payment_method_requests')
      .select(['id', 'setup_token_id', 'created_at'])
      .where('status', '=', 'pending')
      .where('updated_at', '<=', stale)
      .orderBy('updated_at')
      .limit(200)
      .forUpdate()
      .skipLocked()
      .execute();
    for (const r of due)
      await enqueue(trx, PaymentMethodApproved, {
        setupTokenId: r.setup_token_id,
        source: 'reconciliation',
        expireUnapproved: r.created_at <= ttl,
      });
    await paymentMethodRequests.touchMany(
      trx,
      due.map((r) => r.id),
      now,
    );
    return due.length;
  });
}

const MAX_SWEEPS = 3;

/**
 * A webhook event stored but still unprocessed RECONCILE_AFTER_MS later (its message lost, or
 * dead-lettered and not replayed) is handed to the payment-worker again, at most MAX_SWEEPS times;
 * the handler skips an event already processed, so a sweep never applies one twice.
 */
async function sweepUnprocessedEvents(db: Db, stale: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const events = await trx
      .selectFrom('provider_events')
      .select(['id', 'event_type'])
      .where('processed_at', 'is', null)
      .where('received_at', '<=', stale)
      .where('sweeps', '<', MAX_SWEEPS)
      .where((eb) => eb.or([eb('swept_at', 'is', null), eb('swept_at', '<=', stale)]))
      .orderBy('received_at')
      .limit(200)
      .forUpdate()
      .skipLocked()
      .execute();
    for (const e of events) {
      await enqueue(trx, ProviderEventReceived, {
        providerEventRowId: e.id,
        provider: 'paypal',
        eventType: e.event_type,
      });
      await trx
        .updateTable('provider_events')
        .set({ sweeps: sql`sweeps + 1`, swept_at: sql`now()` })
        .where('id', '=', e.id)
        .execute();
    }
    return events.length;
  });
}
