import { randomUUID } from 'node:crypto';
import t from 'tap';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { NotResumableError } from '@billing/domain';
import {
  cancelSubscription,
  createCoupon,
  openCheckout,
  pendingWalletRequest,
  resumeSubscription,
  subscriptions,
  vaultCheckoutOpened,
  walletApprovedByBuyer,
  walletCancelledByBuyer,
  walletExpired,
  walletRevoked,
  walletSaved,
  type ChargeRefusal,
  type PaymentUseCaseContext,
} from '../src/index.js';

// The use cases "the buyer saved a wallet at PayPal" and "undo a cancel at the period end"
// (docs/architecture.md, use cases; docs/api.md, free trials, replacing the payment method, resume)
// against a real, migrated database.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
const base = { description: '', currency: 'EUR', period: 'P1M', active: true };
await importCatalog(db, [
  { ...base, id: 'p', name: 'P', role: 'r', amount: 500 },
  { ...base, id: 'tr', name: 'Trial', role: 'tr', amount: 500, trialPeriod: 'P7D' },
]);
await db.transaction().execute((trx) =>
  createCoupon(trx, {
    code: 'FREE',
    percentOff: 100,
    amountOff: null,
    currency: null,
    durationPeriods: 1,
    maxRedemptions: null,
    maxRedemptionsPerUser: null,
    expiresAt: null,
  }),
);
const plans = {
  p: { id: 'p', name: 'P', role: 'r', amount: 500, currency: 'EUR', period: 'P1M', trial_period: null },
  tr: { id: 'tr', name: 'Trial', role: 'tr', amount: 500, currency: 'EUR', period: 'P1M', trial_period: 'P7D' },
};
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const ctx: PaymentUseCaseContext = { logger: silent, dunningRetryMs: [60_000] };
const refusal = (issue: string): ChargeRefusal => Object.assign(new Error(issue), { issue });
const subOf = (id: string) => db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const requestOf = (token: string) =>
  db.selectFrom('payment_method_requests').selectAll().where('setup_token_id', '=', token).executeTakeFirstOrThrow();

/** A checkout with nothing charged now, its setup token asked for: the subscription and the token's id. */
async function vaultCheckout(plan: (typeof plans)['p'] | (typeof plans)['tr'], couponCode?: string) {
  const userId = `u-${randomUUID().slice(0, 8)}`;
  const subscriptionId = randomUUID();
  const opened = await openCheckout(db, {
    subscriptionId,
    paymentId: randomUUID(),
    userId,
    plan,
    couponCode,
    roles: [],
    rolesReadAt: new Date(),
  });
  if (opened.due === 'paid') throw new Error('expected nothing due now');
  const setupTokenId = `TOKEN-${randomUUID().slice(0, 8)}`;
  await vaultCheckoutOpened(db, { subscriptionId, userId, setupTokenId, approvalUrl: `https://pp/${setupTokenId}` });
  return { subscriptionId, setupTokenId };
}

t.test('a trial checkout: the saved wallet starts the trial; twice: nothing', async (t) => {
  const c = await vaultCheckout(plans.tr);
  const request = await pendingWalletRequest(db, c.setupTokenId);
  t.ok(request, 'the request waits');
  t.equal(await walletSaved(ctx, db, request!.id, { paymentTokenId: 'PT-1' }), 'trial started');
  t.match(await subOf(c.subscriptionId), { status: 'trialing', vault_id: 'PT-1' });
  t.match(await requestOf(c.setupTokenId), { status: 'completed', payment_token_id: 'PT-1' });
  t.equal(await walletSaved(ctx, db, request!.id, { paymentTokenId: 'PT-1' }), 'no-op');
  t.equal(await pendingWalletRequest(db, c.setupTokenId), undefined, 'no longer pending');
});

t.test('a first period a coupon made free: paid without a charge once the wallet is saved', async (t) => {
  const c = await vaultCheckout(plans.p, 'FREE');
  const request = (await pendingWalletRequest(db, c.setupTokenId))!;
  t.equal(await walletSaved(ctx, db, request.id, { paymentTokenId: 'PT-2' }), 'activated (free period, not charged)');
  t.match(await subOf(c.subscriptionId), { status: 'active', vault_id: 'PT-2' });
});

t.test('PayPal would not save the wallet: the request fails and the checkout ends', async (t) => {
  const c = await vaultCheckout(plans.tr);
  const request = (await pendingWalletRequest(db, c.setupTokenId))!;
  t.equal(await walletSaved(ctx, db, request.id, refusal('INVALID_RESOURCE_ID')), 'refused: INVALID_RESOURCE_ID');
  t.match(await requestOf(c.setupTokenId), { status: 'failed' });
  t.match(await subOf(c.subscriptionId), { status: 'cancelled', approval_url: null });
});

t.test(
  'a wallet deleted at PayPal before its save was recorded: not kept, the request fails (docs/webhooks.md)',
  async (t) => {
    const c = await vaultCheckout(plans.tr);
    const request = (await pendingWalletRequest(db, c.setupTokenId))!;
    // PayPal's VAULT.PAYMENT-TOKEN.DELETED for the new token was applied first.
    t.equal(await db.transaction().execute((trx) => walletRevoked(ctx, trx, 'PT-gone')), 0, 'no subscription held it');
    t.equal(
      await walletSaved(ctx, db, request.id, { paymentTokenId: 'PT-gone' }),
      'refused: the wallet was deleted at PayPal',
    );
    t.match(await requestOf(c.setupTokenId), { status: 'failed' });
    t.match(await subOf(c.subscriptionId), { status: 'cancelled', vault_id: null }, 'no trial on a deleted wallet');
  },
);

t.test('a setup token never approved: the request and its checkout expire once', async (t) => {
  const c = await vaultCheckout(plans.tr);
  t.equal(await walletExpired(db, c.setupTokenId), true);
  t.match(await requestOf(c.setupTokenId), { status: 'cancelled' });
  t.match(await subOf(c.subscriptionId), { status: 'cancelled' });
  t.equal(await walletExpired(db, c.setupTokenId), false, 'twice: nothing');
});

const approvalsOf = async (token: string) =>
  (await db.selectFrom('outbox').select('envelope').where('type', '=', 'payment.method.approved').execute()).filter(
    (r) => (r.envelope as { data: { setupTokenId: string } }).data.setupTokenId === token,
  ).length;

t.test('the buyer back from PayPal with an approved token: the worker asked to save it while it waits', async (t) => {
  const c = await vaultCheckout(plans.tr);
  t.equal(await walletApprovedByBuyer(db, 'TOKEN-nobody'), 'unknown', 'a token of nobody');
  t.equal(await walletApprovedByBuyer(db, c.setupTokenId), 'checkout', "a checkout's wallet");
  t.equal(await approvalsOf(c.setupTokenId), 1, 'payment.method.approved in the outbox');
  await walletSaved(ctx, db, (await pendingWalletRequest(db, c.setupTokenId))!.id, { paymentTokenId: 'PT-r' });
  t.equal(await walletApprovedByBuyer(db, c.setupTokenId), 'replacement', 'the subscription is live now');
  t.equal(await approvalsOf(c.setupTokenId), 1, 'saved already: nothing asked again');
});

t.test('the buyer gave up at PayPal without saving: the request ends, and a checkout with it', async (t) => {
  const c = await vaultCheckout(plans.tr);
  t.equal(await walletCancelledByBuyer(db, c.setupTokenId), 'checkout');
  t.match(await requestOf(c.setupTokenId), { status: 'cancelled' });
  t.match(await subOf(c.subscriptionId), { status: 'cancelled' });
  t.equal(await walletCancelledByBuyer(db, c.setupTokenId), 'unknown', 'twice: nothing');

  const live = await vaultCheckout(plans.tr);
  await walletSaved(ctx, db, (await pendingWalletRequest(db, live.setupTokenId))!.id, { paymentTokenId: 'PT-l' });
  await db
    .insertInto('payment_method_requests')
    .values({
      id: randomUUID(),
      subscription_id: live.subscriptionId,
      user_id: 'x',
      setup_token_id: 'NEW',
      status: 'pending',
    })
    .execute();
  t.equal(await walletCancelledByBuyer(db, 'NEW'), 'replacement', 'a replacement given up: the subscription stays');
  t.match(await subOf(live.subscriptionId), { status: 'trialing', vault_id: 'PT-l' });
});

t.test(
  "a live subscription's wallet replaced; a past_due one retried at once; an ended one kept for nothing",
  async (t) => {
    const c = await vaultCheckout(plans.tr);
    await walletSaved(ctx, db, (await pendingWalletRequest(db, c.setupTokenId))!.id, { paymentTokenId: 'PT-old' });
    const replace = async (token: string) => {
      const id = randomUUID();
      await db
        .insertInto('payment_method_requests')
        .values({ id, subscription_id: c.subscriptionId, user_id: 'x', setup_token_id: token, status: 'pending' })
        .execute();
      return walletSaved(ctx, db, id, { paymentTokenId: `PT-${token}` });
    };
    t.equal(await replace('A'), 'replaced');
    t.match(await subOf(c.subscriptionId), { status: 'trialing', vault_id: 'PT-A' });

    await db
      .updateTable('subscriptions')
      .set({ status: 'past_due', payment_method_required: 'payment_token_deleted', next_retry_at: null })
      .where('id', '=', c.subscriptionId)
      .execute();
    const before = Date.now();
    t.equal(await replace('B'), 'replaced; retrying now');
    const s = await subOf(c.subscriptionId);
    t.match(s, { vault_id: 'PT-B', payment_method_required: null, payment_method_deadline: null });
    t.ok(s.next_retry_at && s.next_retry_at.getTime() >= before - 1000, 'retried at once');

    await db.updateTable('subscriptions').set({ status: 'expired' }).where('id', '=', c.subscriptionId).execute();
    t.equal(await replace('C'), 'subscription expired: kept for nothing');
    t.match(await subOf(c.subscriptionId), { vault_id: 'PT-B' });

    const orphan = { subscriptionId: randomUUID() };
    await openCheckout(db, {
      ...orphan,
      paymentId: randomUUID(),
      userId: `u-${randomUUID().slice(0, 8)}`,
      plan: plans.p,
      roles: [],
      rolesReadAt: new Date(),
    });
    const id = randomUUID();
    await db
      .insertInto('payment_method_requests')
      .values({ id, subscription_id: orphan.subscriptionId, user_id: 'x', setup_token_id: 'D', status: 'pending' })
      .execute();
    t.equal(
      await walletSaved(ctx, db, id, { paymentTokenId: 'PT-D' }),
      'no-op: nothing waits for this wallet',
      'a pending paid checkout waits for its order, not a wallet',
    );
  },
);

t.test('resume: a cancel at the period end undone; not when nothing is saved to charge', async (t) => {
  const c = await vaultCheckout(plans.tr);
  await walletSaved(ctx, db, (await pendingWalletRequest(db, c.setupTokenId))!.id, { paymentTokenId: 'PT-R' });
  const now = new Date();
  const inTx = <T>(
    f: (s: Awaited<ReturnType<typeof subOf>>, trx: Parameters<typeof resumeSubscription>[0]) => Promise<T>,
  ) => db.transaction().execute(async (trx) => f(await subscriptions.lockOrThrow(trx, c.subscriptionId), trx));
  t.equal(await inTx((s, trx) => resumeSubscription(trx, s, now)), false, 'nothing to undo');
  await inTx((s, trx) => cancelSubscription(trx, s, 'at_period_end', now, { by: 'user:x', reason: 'test' }));
  t.match(await subOf(c.subscriptionId), { cancel_at_period_end: true });
  t.equal(await inTx((s, trx) => resumeSubscription(trx, s, now)), true);
  t.match(await subOf(c.subscriptionId), { status: 'trialing', cancel_at_period_end: false });

  await inTx((s, trx) => cancelSubscription(trx, s, 'at_period_end', now, { by: 'user:x', reason: 'test' }));
  await db.updateTable('subscriptions').set({ vault_id: null }).where('id', '=', c.subscriptionId).execute();
  await t.rejects(
    inTx((s, trx) => resumeSubscription(trx, s, now)),
    NotResumableError,
  );
});
