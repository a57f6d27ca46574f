import t from 'tap';
import {
  applySubscriptionEvent,
  SUBSCRIPTION_STATUSES,
  type SubscriptionEvent,
  type SubscriptionState,
  type SubscriptionStatus,
} from '../src/subscription-state.js';

const st = (status: SubscriptionStatus, cancelAtPeriodEnd = false): SubscriptionState => ({
  status,
  cancelAtPeriodEnd,
});
const ev = (type: Exclude<SubscriptionEvent['type'], 'resume'>) => ({ type }) as SubscriptionEvent;

type Row = [SubscriptionState, SubscriptionEvent, SubscriptionState, string[]];
const changes: Row[] = [
  [st('pending'), ev('initial_payment_completed'), st('active'), ['grant_starts']],
  [st('cancelled'), ev('initial_payment_completed'), st('cancelled'), ['refund_payment']],
  [st('expired'), ev('initial_payment_completed'), st('expired'), ['refund_payment']],
  [st('pending'), ev('initial_payment_failed'), st('cancelled'), []],
  [st('past_due'), ev('renewal_completed'), st('active'), []],
  [st('past_due', true), ev('renewal_completed'), st('active', true), []],
  [st('cancelled'), ev('renewal_completed'), st('cancelled'), ['refund_payment']],
  [st('expired'), ev('renewal_completed'), st('expired'), ['refund_payment']],
  [st('active'), ev('renewal_failed'), st('past_due'), []],
  [st('active'), ev('dunning_exhausted'), st('expired'), ['grant_ends']],
  [st('past_due'), ev('dunning_exhausted'), st('expired'), ['grant_ends']],
  [st('pending'), ev('cancel_at_period_end'), st('cancelled'), []],
  [st('active'), ev('cancel_at_period_end'), st('active', true), []],
  [st('past_due'), ev('cancel_at_period_end'), st('past_due', true), []],
  [st('pending'), ev('cancel_immediately'), st('cancelled'), []],
  [st('active'), ev('cancel_immediately'), st('cancelled'), ['grant_ends', 'refund_unused']],
  [st('active', true), ev('cancel_immediately'), st('cancelled', true), ['grant_ends', 'refund_unused']],
  [st('past_due'), ev('cancel_immediately'), st('cancelled'), ['grant_ends', 'refund_unused']],
  [st('active', true), ev('period_ended'), st('expired', true), ['grant_ends']],
  [st('past_due', true), ev('period_ended'), st('expired', true), ['grant_ends']],
  [st('active'), ev('payment_method_removed'), st('active', true), []],
  [st('past_due'), ev('payment_method_removed'), st('past_due', true), []],
  [st('active'), ev('current_payment_lost'), st('cancelled'), ['grant_ends']],
  [st('active', true), ev('current_payment_lost'), st('cancelled', true), ['grant_ends']],
  [st('past_due'), ev('current_payment_lost'), st('cancelled'), ['grant_ends']],
  [st('active', true), ev('renewal_failed'), st('past_due', true), []],
  [st('active', true), ev('dunning_exhausted'), st('expired', true), ['grant_ends']],
  [st('past_due', true), ev('dunning_exhausted'), st('expired', true), ['grant_ends']],
  [st('past_due', true), ev('cancel_immediately'), st('cancelled', true), ['grant_ends', 'refund_unused']],
  [st('cancelled', true), ev('initial_payment_completed'), st('cancelled', true), ['refund_payment']],
  [st('cancelled', true), ev('renewal_completed'), st('cancelled', true), ['refund_payment']],
  [st('expired', true), ev('initial_payment_completed'), st('expired', true), ['refund_payment']],
  [st('expired', true), ev('renewal_completed'), st('expired', true), ['refund_payment']],
  [st('past_due', true), ev('current_payment_lost'), st('cancelled', true), ['grant_ends']],
  [st('pending'), ev('replaced'), st('cancelled'), []],
  [st('past_due'), ev('replaced'), st('cancelled'), ['grant_ends']],
  [st('past_due', true), ev('replaced'), st('cancelled', true), ['grant_ends']],
  // Pauses (docs/api.md, pause and resume): no role while paused; the time left comes back at the resume.
  [st('active'), ev('pause'), st('paused'), ['grant_ends']],
  [st('paused'), ev('unpause'), st('active'), ['grant_starts']],
  [st('paused', true), ev('unpause'), st('active', true), ['grant_starts']],
  [st('paused'), ev('cancel_at_period_end'), st('paused', true), []],
  [st('paused'), ev('cancel_immediately'), st('cancelled'), ['refund_unused']],
  [st('paused', true), ev('cancel_immediately'), st('cancelled', true), ['refund_unused']],
  [st('paused'), ev('payment_method_removed'), st('paused', true), []],
  [st('paused'), ev('current_payment_lost'), st('cancelled'), []],
  [st('paused', true), ev('current_payment_lost'), st('cancelled', true), []],
  // Trials (docs/api.md, free trials): the role is granted while trialing; the first charge is a renewal's.
  [st('pending'), ev('trial_started'), st('trialing'), ['grant_starts']],
  [st('trialing'), ev('renewal_completed'), st('active'), []],
  [st('trialing'), ev('renewal_failed'), st('past_due'), []],
  [st('trialing', true), ev('renewal_failed'), st('past_due', true), []],
  [st('trialing'), ev('dunning_exhausted'), st('expired'), ['grant_ends']],
  [st('trialing', true), ev('dunning_exhausted'), st('expired', true), ['grant_ends']],
  [st('trialing'), ev('cancel_at_period_end'), st('trialing', true), []],
  [st('trialing'), ev('cancel_immediately'), st('cancelled'), ['grant_ends', 'refund_unused']],
  [st('trialing', true), ev('cancel_immediately'), st('cancelled', true), ['grant_ends', 'refund_unused']],
  [st('trialing', true), ev('period_ended'), st('expired', true), ['grant_ends']],
  [st('trialing'), ev('payment_method_removed'), st('trialing', true), []],
  [st('trialing'), ev('current_payment_lost'), st('cancelled'), ['grant_ends']],
  [st('trialing', true), ev('current_payment_lost'), st('cancelled', true), ['grant_ends']],
  [st('trialing', true), ev('renewal_completed'), st('active', true), []],
];

t.test('every transition that changes the subscription', async (t) => {
  for (const [from, event, to, effects] of changes) {
    const r = applySubscriptionEvent(from, event);
    t.same(r, { ...to, effects }, `${JSON.stringify(from)} + ${event.type}`);
  }
});

t.test('every other pair is a no-op', async (t) => {
  const types = [
    'initial_payment_completed',
    'initial_payment_failed',
    'renewal_completed',
    'renewal_failed',
    'dunning_exhausted',
    'cancel_at_period_end',
    'cancel_immediately',
    'period_ended',
    'payment_method_removed',
    'current_payment_lost',
    'replaced',
    'trial_started',
    'pause',
    'unpause',
  ] as const;
  let noops = 0;
  for (const status of SUBSCRIPTION_STATUSES) {
    // a pending subscription is never set to end at its period end
    for (const flag of status === 'pending' ? [false] : [false, true]) {
      for (const type of types) {
        if (changes.some(([f, e]) => f.status === status && f.cancelAtPeriodEnd === flag && e.type === type)) continue;
        t.equal(applySubscriptionEvent(st(status, flag), ev(type)), null, `${status}/${flag} + ${type}`);
        noops++;
      }
    }
  }
  t.ok(noops > 50, `${noops} no-op pairs checked`);
});

t.test('resume', async (t) => {
  t.same(applySubscriptionEvent(st('active', true), { type: 'resume', periodEnded: false, hasPaymentMethod: true }), {
    status: 'active',
    cancelAtPeriodEnd: false,
    effects: [],
  });
  t.equal(applySubscriptionEvent(st('active'), { type: 'resume', periodEnded: false, hasPaymentMethod: true }), null);
  t.throws(
    () => applySubscriptionEvent(st('active', true), { type: 'resume', periodEnded: true, hasPaymentMethod: true }),
    { code: 'not-resumable' },
  );
  t.throws(
    () => applySubscriptionEvent(st('active', true), { type: 'resume', periodEnded: false, hasPaymentMethod: false }),
    { code: 'not-resumable' },
  );
  t.same(
    applySubscriptionEvent(st('trialing', true), { type: 'resume', periodEnded: false, hasPaymentMethod: true }),
    { status: 'trialing', cancelAtPeriodEnd: false, effects: [] },
    'a trial set to end resumes before its end',
  );
  t.throws(
    () => applySubscriptionEvent(st('trialing', true), { type: 'resume', periodEnded: true, hasPaymentMethod: true }),
    { code: 'not-resumable' },
  );
  for (const s of ['pending', 'past_due', 'paused', 'cancelled', 'expired'] as const) {
    t.throws(
      () => applySubscriptionEvent(st(s, true), { type: 'resume', periodEnded: false, hasPaymentMethod: true }),
      { code: 'not-resumable' },
      s,
    );
  }
});

t.test('live: trialing, active and past_due, and no other status', async (t) => {
  const { isLive, LIVE_STATUSES, SUBSCRIPTION_STATUSES } = await import('../src/subscription-state.js');
  t.same(SUBSCRIPTION_STATUSES.filter(isLive), ['trialing', 'active', 'past_due']);
  t.same([...LIVE_STATUSES].sort(), ['active', 'past_due', 'trialing']);
});
