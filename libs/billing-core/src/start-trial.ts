import type { Transaction } from 'kysely';
import { SubscriptionTrialStarted } from '@billing/contracts';
import type { Database, SubscriptionRow } from '@billing/db';
import { trialSchedule } from '@billing/domain';
import { enqueue } from '@billing/messaging';
import { replacePastDue } from './activations.js';
import { endCheckout } from './checkout.js';
import { startSubscriptionGrant } from './grants.js';
import type { PaymentUseCaseContext } from './payment-context.js';
import { subscriptions } from './subscriptions.js';
import { hadTrial, trialNote } from './trials.js';

type Tx = Transaction<Database>;

/**
 * The use case "a trial checkout's wallet is saved" (docs/api.md, free trials): the subscription
 * is trialing with its role granted, and its first period starts at the trial's end (anchored
 * there, nothing paid before it). One trial per user and role: should another have started
 * meanwhile, this checkout ends instead. `sub` is locked by the caller.
 */
export async function startTrial(
  ctx: PaymentUseCaseContext,
  trx: Tx,
  sub: SubscriptionRow,
  vaultId: string,
): Promise<'no-op' | 'refused: a trial for this role was had already' | 'trial started'> {
  if (sub.status !== 'pending' || !sub.trial_period) return 'no-op';
  if (await hadTrial(trx, sub.user_id, sub.role)) {
    await endCheckout(trx, sub);
    return 'refused: a trial for this role was had already';
  }
  const trial = trialSchedule(new Date(), sub.trial_period);
  const t = await subscriptions.transition(
    trx,
    sub,
    { type: 'trial_started' },
    {
      vault_id: vaultId,
      trial_start: trial.start,
      trial_end: trial.end,
      trial_notice_at: trial.noticeAt,
      anchor_at: trial.end,
      paid_through: trial.end,
      approval_url: null,
    },
  );
  if (!t?.effects.includes('grant_starts')) return 'no-op';
  await startSubscriptionGrant(trx, sub, 'trial started');
  await enqueue(trx, SubscriptionTrialStarted, trialNote(sub));
  await replacePastDue(trx, sub, trial.start);
  ctx.logger.info('trial started', { subscriptionId: sub.id, trialEnd: trial.end.toISOString() });
  return 'trial started';
}
