import type { Kysely, Transaction } from 'kysely';
import { PaymentMethodApproved, SubscriptionPaymentMethodRequired } from '@billing/contracts';
import type { Database, PaymentMethodRequestRow, PaymentRow } from '@billing/db';
import { isLive } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { paidWithoutCharge, type PaidOutcome } from './on-payment-event.js';
import { recoveryUrlOf, type PaymentUseCaseContext } from './payment-context.js';
import { paymentMethodRequests } from './payment-method-requests.js';
import type { ChargeRefusal } from './renew.js';
import { startTrial } from './start-trial.js';
import { subscriptions } from './subscriptions.js';
import { endPendingCheckout } from './trials.js';
import { recordVaultRevoked, vaultRevoked } from './vaults.js';

// The use case "the buyer saved a wallet at PayPal" (docs/architecture.md, use cases; docs/api.md,
// replacing the payment method; free trials): the caller turns PayPal's approved setup token into
// a payment token with no transaction held, and hands the answer to `walletSaved`; a setup token
// left unapproved past its time ends with `walletExpired`.

/** What saving a wallet came to. */
export type WalletOutcome =
  | 'no-op'
  | 'no-op: nothing waits for this wallet'
  | `refused: ${string}`
  | Awaited<ReturnType<typeof startTrial>>
  | `${PaidOutcome} (free period, not charged)`
  | `subscription ${string}: kept for nothing`
  | 'replaced'
  | 'replaced; retrying now';

/** The request of a setup token still waiting for its payment token; undefined when none is pending. */
export async function pendingWalletRequest(
  db: Kysely<Database>,
  setupTokenId: string,
): Promise<PaymentMethodRequestRow | undefined> {
  const request = await db
    .selectFrom('payment_method_requests')
    .selectAll()
    .where('setup_token_id', '=', setupTokenId)
    .executeTakeFirst();
  return request?.status === 'pending' ? request : undefined;
}

/**
 * PayPal's payment token for the request `requestId` (or its refusal), recorded under the
 * request's lock: refused, the request fails and a checkout waiting for it ends; saved, a pending
 * checkout starts its trial or has its free first period paid, and a live subscription's wallet is
 * replaced (a past_due one retried at once). Safe to run twice: only a pending request moves.
 */
export async function walletSaved(
  ctx: PaymentUseCaseContext,
  db: Kysely<Database>,
  requestId: string,
  answer: { paymentTokenId: string } | ChargeRefusal,
): Promise<WalletOutcome> {
  return db.transaction().execute(async (trx): Promise<WalletOutcome> => {
    const r = await trx
      .selectFrom('payment_method_requests')
      .selectAll()
      .where('id', '=', requestId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (r.status !== 'pending') return 'no-op';
    if (answer instanceof Error) {
      await paymentMethodRequests.fail(trx, r.id);
      // A checkout whose wallet PayPal would not save ends as a checkout whose payment failed.
      await endPendingCheckout(trx, r.subscription_id, { type: 'provider_failed', reason: 'provider_error' });
      return `refused: ${answer.issue}`;
    }
    // A wallet deleted at PayPal before this answer was recorded is not kept (docs/webhooks.md):
    // saving it failed. The vault id's lock is taken before the subscription's.
    if (await vaultRevoked(trx, answer.paymentTokenId)) {
      await paymentMethodRequests.fail(trx, r.id);
      await endPendingCheckout(trx, r.subscription_id, { type: 'provider_failed', reason: 'provider_error' });
      return 'refused: the wallet was deleted at PayPal';
    }
    const sub = await subscriptions.lockOrThrow(trx, r.subscription_id);
    await paymentMethodRequests.complete(trx, r.id, answer.paymentTokenId);
    // A checkout with nothing to charge now (docs/api.md, free trials): the saved wallet starts the trial, or
    // the first period a coupon made free is recorded as paid without a charge.
    if (sub.status === 'pending') {
      if (sub.trial_period) return startTrial(ctx, trx, sub, answer.paymentTokenId);
      const free = await trx
        .selectFrom('payments')
        .selectAll()
        .where('subscription_id', '=', sub.id)
        .where('kind', '=', 'initial')
        .where('status', '=', 'created')
        .where('amount', '=', 0)
        .forUpdate()
        .executeTakeFirst();
      if (!free) return 'no-op: nothing waits for this wallet';
      return paidWithoutCharge(ctx, trx, free, answer.paymentTokenId);
    }
    if (!isLive(sub.status)) return `subscription ${sub.status}: kept for nothing`;
    await subscriptions.record(trx, sub, {
      vault_id: answer.paymentTokenId,
      payment_method_required: null,
      payment_method_deadline: null,
      // A past_due subscription is retried at once with the new wallet (the scheduler's next pass).
      ...(sub.status === 'past_due' ? { next_retry_at: new Date() } : {}),
    });
    return sub.status === 'past_due' ? 'replaced; retrying now' : 'replaced';
  });
}

/**
 * A setup token left unapproved past CHECKOUT_TTL_MS: its request ends, and a checkout waiting for
 * it with it (`checkout_expired`, as an unapproved order's checkout). False when none was pending.
 */
export async function walletExpired(db: Kysely<Database>, setupTokenId: string): Promise<boolean> {
  return (await walletGivenUp(db, setupTokenId, 'checkout_expired')) !== 'unknown';
}

/**
 * The buyer came back from PayPal without saving a wallet: its request ends, and a checkout waiting
 * for it (a trial, a free first period) with it, as any checkout given up (`buyer_cancelled`).
 * `checkout` when a checkout ended, `replacement` when a live subscription's request did, `unknown`
 * for a token with no pending request (a repeat, or not ours). Safe to run twice.
 */
export async function walletCancelledByBuyer(db: Kysely<Database>, setupTokenId: string): Promise<WalletReturn> {
  return walletGivenUp(db, setupTokenId, 'buyer_cancelled');
}

/** What a setup token the buyer came back with belongs to. */
export type WalletReturn = 'checkout' | 'replacement' | 'unknown';

async function walletGivenUp(
  db: Kysely<Database>,
  setupTokenId: string,
  type: 'checkout_expired' | 'buyer_cancelled',
): Promise<WalletReturn> {
  return db.transaction().execute(async (trx) => {
    const subscriptionId = await paymentMethodRequests.cancelPending(trx, setupTokenId);
    if (!subscriptionId) return 'unknown';
    return (await endPendingCheckout(trx, subscriptionId, { type })) ? 'checkout' : 'replacement';
  });
}

/**
 * The buyer came back from PayPal having approved a setup token: while its request waits, the
 * payment-worker is asked to save the wallet (`PaymentMethodApproved`, after commit). Says whether
 * the token saves a checkout's wallet (its subscription still pending) or replaces a live one's.
 */
export async function walletApprovedByBuyer(db: Kysely<Database>, setupTokenId: string): Promise<WalletReturn> {
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .selectFrom('payment_method_requests as r')
      .innerJoin('subscriptions as s', 's.id', 'r.subscription_id')
      .select(['r.status', 's.status as subscriptionStatus'])
      .where('r.setup_token_id', '=', setupTokenId)
      .executeTakeFirst();
    if (!r) return 'unknown';
    if (r.status === 'pending') await enqueue(trx, PaymentMethodApproved, { setupTokenId });
    return r.subscriptionStatus === 'pending' ? 'checkout' : 'replacement';
  });
}

/** PayPal saved the buyer's wallet with a first payment (`p` locked by the caller): kept unless one is kept already. */
export async function walletKept(
  trx: Transaction<Database>,
  p: PaymentRow,
  vaultId: string,
): Promise<'kept' | 'deleted before'> {
  // The vault id's lock before the subscription's, as the deletion takes them (docs/webhooks.md).
  if (await vaultRevoked(trx, vaultId)) return 'deleted before';
  const sub = await subscriptions.lockOrThrow(trx, p.subscription_id);
  if (!sub.vault_id) await subscriptions.record(trx, sub, { vault_id: vaultId });
  return 'kept';
}

/**
 * The buyer revoked a saved wallet at PayPal (docs/api.md, …/payment-method): it is not charged
 * again; a live subscription's buyer is told now and may save a new one (the next renewal finds no
 * method and waits for it). How many subscriptions held it.
 */
export async function walletRevoked(
  ctx: Pick<PaymentUseCaseContext, 'recoveryLinks'>,
  trx: Transaction<Database>,
  vaultId: string,
): Promise<number> {
  // Recorded first, under the vault id's lock: nothing attaches it again (docs/webhooks.md).
  await recordVaultRevoked(trx, vaultId);
  const subs = await trx.selectFrom('subscriptions').selectAll().where('vault_id', '=', vaultId).forUpdate().execute();
  for (const sub of subs) {
    if (!isLive(sub.status)) {
      await subscriptions.record(trx, sub, { vault_id: null });
      continue;
    }
    await subscriptions.record(trx, sub, {
      vault_id: null,
      next_retry_at: null,
      payment_method_required: 'payment_token_deleted',
    });
    await enqueue(trx, SubscriptionPaymentMethodRequired, {
      userId: sub.user_id,
      subscriptionId: sub.id,
      planId: sub.plan_id,
      planName: sub.plan_name,
      reason: 'payment_token_deleted',
      recoveryUrl: recoveryUrlOf(ctx, sub.id, new Date()),
    });
  }
  return subs.length;
}
