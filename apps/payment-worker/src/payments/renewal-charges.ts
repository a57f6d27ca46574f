import { isLive } from '@billing/domain';
import type { RenewalChargeRequested } from '@billing/contracts';
import type { Static } from 'typebox';
import {
  completeRenewals,
  decideCharge,
  recordCharge,
  renewalOutcome,
  vaultCharge,
  type ChargeOutcome,
  fits,
  lockCharges,
  ReceiptBatch,
  type CapturedRenewal,
  type PaymentUseCaseContext,
} from '@billing/billing-core';
import { Batcher, withConnectionPriority, type Db } from '@billing/db';
import type { WindowApply } from '@billing/messaging';
import { ProviderRefusedError, type OrderState } from '@billing/payments';
import { chargeDecided } from '../handlers/charge-renewal.js';
import { recordAnswer, type PaymentContext, type Tx } from './context.js';
import type { PaymentWindow } from './window.js';

/** What a claimed renewal comes to in its window: not charged (and why), or the charge to make. */
type Decision = Awaited<ReturnType<typeof decideCharge>>;

/**
 * Renewal charges in windows (docs/messages.md, windows). The renewal messages a worker took at
 * once are decided in the window's transaction with one locking read; the charges are made once
 * it committed, side by side (as many as the prefetch); the answers that arrive together are
 * recorded together, the common case (a completed capture for a live subscription) set-based in
 * billing-core's `completeRenewals`, every other case the usual way, in the same transaction.
 */
export function chargeRenewalInWindow(
  ctx: PaymentContext,
  db: Db,
): WindowApply<Static<(typeof RenewalChargeRequested)['schema']>, PaymentWindow> {
  type Batch = { ids: string[]; decided: Map<string, Decision> };
  const batches = new WeakMap<PaymentWindow, Batch>();
  return async ({ envelope, window, logger }) => {
    const { paymentId } = envelope.data;
    const batch: Batch = batches.get(window) ?? { ids: [], decided: new Map() };
    if (!batches.has(window)) {
      batches.set(window, batch);
      // Decided together when the window's messages have all been seen, before its receipts are numbered.
      window.beforeClose.push(async (trx) => {
        batch.decided = await decideCharges({ ...ctx, receipts: window.receipts }, trx, batch.ids);
      });
    }
    batch.ids.push(paymentId);
    window.named.ids.add(paymentId); // locked up front with the window's others
    return async () => {
      const decision = batch.decided.get(paymentId);
      if (decision === undefined) throw new Error(`renewal ${paymentId} was not decided in its window`);
      const outcome = typeof decision === 'string' ? decision : await chargeDecided(ctx, db, paymentId, decision);
      logger.info('renewal charged', { paymentId, outcome });
      if (outcome !== 'no-op') ctx.metrics?.renewalCharges.inc({ outcome: renewalOutcome(outcome) });
    };
  };
}

/**
 * What each renewal payment of a window comes to, in the window's transaction: the common case
 * (a `created` renewal of a live subscription with a saved wallet, its period held by no other
 * payment) from one locking read, every other case through `decideCharge`, which writes what it decides.
 */
export async function decideCharges(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  ids: readonly string[],
): Promise<Map<string, Decision>> {
  const locked = await lockCharges(trx, ids);
  const decided = new Map<string, Decision>();
  for (const id of ids) {
    if (decided.has(id)) continue;
    const l = locked.get(id);
    // The common case, from the read above; every other one as a single message decides it.
    const plain =
      l &&
      l.p.kind === 'renewal' &&
      l.p.status === 'created' &&
      l.p.amount > 0 &&
      !l.periodTaken &&
      isLive(l.sub.status) &&
      !l.sub.cancel_at_period_end &&
      l.sub.vault_id;
    decided.set(id, plain ? vaultCharge(l.p, plain, `${l.sub.plan_name} renewal`) : await decideCharge(ctx, trx, id));
  }
  return decided;
}

type Answer = OrderState | ProviderRefusedError;
interface Pending {
  paymentId: string;
  answer: Answer;
  resolve: (outcome: ChargeOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for renewal charges' answers (docs/messages.md, windows): those arriving within
 * `delayMs` of each other are recorded in one transaction, which locks their payments and
 * subscriptions in two statements, completes the common ones set-based and records the others
 * one by one. If it fails, each is recorded again on its own, and only its own failure reaches its caller.
 */
export class RenewalAnswers {
  private readonly queue: Batcher<Pending>;
  readonly stats = { groups: 0, completedSetBased: 0, redone: 0 };

  constructor(
    private readonly ctx: PaymentContext,
    private readonly db: Db,
    max = 64,
    /**
     * 10 ms: a renewal waits for nobody, so the first answer of a group waits for others to join.
     * 10,000 renewals (BENCH_ONLY=renewals): 2 ms 40.9-44.1 s, 5 ms 35.3 s, 10 ms 31.2-34.7 s, 25 ms 33.3 s.
     */
    delayMs = 10,
  ) {
    this.queue = new Batcher((items) => this.runGroup(items), max, delayMs);
  }

  record(paymentId: string, answer: Answer): Promise<ChargeOutcome> {
    return new Promise<ChargeOutcome>((resolve, reject) => this.queue.add({ paymentId, answer, resolve, reject }));
  }

  private async runGroup(items: Pending[]): Promise<void> {
    let outcomes: { out: ChargeOutcome[]; setBased: number };
    try {
      outcomes = await withConnectionPriority(() =>
        this.db.transaction().execute(async (trx) => {
          const receipts = new ReceiptBatch();
          const recorded = await this.recordAll(trx, items, receipts);
          if (receipts.size) await receipts.issue(trx);
          return recorded;
        }),
      );
    } catch (err) {
      if (items.length === 1) {
        items[0]!.reject(err);
        return;
      }
      this.stats.redone++;
      await Promise.all(
        items.map((i) =>
          recordAnswer(this.ctx, this.db, i.paymentId, (trx, o) => recordCharge(o, trx, i.paymentId, i.answer)).then(
            i.resolve,
            i.reject,
          ),
        ),
      );
      return;
    }
    this.stats.groups++;
    this.stats.completedSetBased += outcomes.setBased;
    items.forEach((item, i) => item.resolve(outcomes.out[i]!));
  }

  /** Every answer of the group recorded in `trx`: the common ones set-based, the others one by one. */
  private async recordAll(
    trx: Tx,
    items: Pending[],
    receipts: ReceiptBatch,
  ): Promise<{ out: ChargeOutcome[]; setBased: number }> {
    const locked = await lockCharges(
      trx,
      items.map((i) => i.paymentId),
    );
    const count = (key: (i: Pending) => string | undefined) => {
      const n = new Map<string | undefined, number>();
      for (const i of items) n.set(key(i), (n.get(key(i)) ?? 0) + 1);
      return n;
    };
    const perPayment = count((i) => i.paymentId);
    const perSub = count((i) => locked.get(i.paymentId)?.sub.id);
    const plain: (CapturedRenewal | null)[] = items.map(({ paymentId, answer }) => {
      const l = locked.get(paymentId);
      if (!l || answer instanceof ProviderRefusedError || !answer.capture) return null;
      if (perPayment.get(paymentId) !== 1 || perSub.get(l.sub.id) !== 1) return null;
      const c = answer.capture;
      if (c.status !== 'COMPLETED' || c.customId !== l.p.id || c.amount !== l.p.amount || c.currency !== l.p.currency)
        return null;
      const captured = { ...l, orderId: answer.orderId, captureId: c.id };
      return fits(captured) ? captured : null;
    });
    const common = plain.filter((c): c is CapturedRenewal => c !== null);
    await completeRenewals(trx, common, receipts, this.ctx.publicBaseUrl);
    const out: ChargeOutcome[] = [];
    for (const [i, item] of items.entries())
      out.push(plain[i] ? 'renewed' : await recordCharge({ ...this.ctx, receipts }, trx, item.paymentId, item.answer));
    return { out, setBased: common.length };
  }
}
