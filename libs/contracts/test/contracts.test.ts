import t from 'tap';
import { Compile } from 'typebox/compile';
import { EnvelopeSchema, EXCHANGES, NOTIFICATION_CONTRACTS, QUEUES, NOTIFICATIONS_BINDING } from '../src/index.js';

t.test('docs/messages.md: notification types, routing keys and fields, exactly', async (t) => {
  const expected: Record<string, string[]> = {
    'subscription.activated': [
      'userId',
      'subscriptionId',
      'planId',
      'planName',
      'role',
      'amount',
      'currency',
      'currentPeriodStart',
      'currentPeriodEnd',
    ],
    'subscription.renewed': [
      'userId',
      'subscriptionId',
      'planId',
      'planName',
      'role',
      'amount',
      'currency',
      'currentPeriodStart',
      'currentPeriodEnd',
    ],
    'subscription.renewal_failed': [
      'userId',
      'subscriptionId',
      'planId',
      'planName',
      'amount',
      'currency',
      'reason',
      'nextRetryAt',
      'recoveryUrl',
    ],
    'subscription.cancelled': [
      'userId',
      'subscriptionId',
      'planId',
      'planName',
      'mode',
      'cancelledAt',
      'endsAt',
      'refundAmount',
      'currency',
    ],
    'subscription.expired': ['userId', 'subscriptionId', 'planId', 'planName', 'role', 'expiredAt'],
    // docs/messages.md, notifications: plan changes, trials, payment methods, coupons
    'subscription.plan_changed': [
      'userId',
      'subscriptionId',
      'fromPlanId',
      'toPlanId',
      'effectiveAt',
      'amountCharged',
      'currency',
    ],
    'subscription.plan_change_failed': ['userId', 'subscriptionId', 'fromPlanId', 'toPlanId', 'reason'],
    'subscription.payment_method_required': ['userId', 'subscriptionId', 'planId', 'planName', 'reason', 'recoveryUrl'],
    ...Object.fromEntries(
      ['subscription.trial_started', 'subscription.trial_will_end'].map((type) => [
        type,
        ['userId', 'subscriptionId', 'planId', 'planName', 'role', 'trialStart', 'trialEnd', 'amount', 'currency'],
      ]),
    ),
    'payment.refunded': ['userId', 'paymentId', 'refundId', 'amount', 'currency', 'refundedAmount', 'creditNoteNumber'],
    'payment.completed': [
      'userId',
      'paymentId',
      'subscriptionId',
      'kind',
      'amount',
      'currency',
      'receiptNumber',
      'receiptUrl',
    ],
    // docs/scheduler.md, renewal reminders
    'subscription.renewal_upcoming': [
      'userId',
      'subscriptionId',
      'planId',
      'planName',
      'amount',
      'currency',
      'renewsAt',
      'periodEnd',
    ],
    // docs/api.md, pause and resume
    'subscription.paused': ['userId', 'subscriptionId', 'planId', 'planName', 'pausedAt', 'resumesAt'],
    'subscription.resumed': ['userId', 'subscriptionId', 'planId', 'planName', 'resumedAt', 'currentPeriodEnd'],
    'role.granted': ['userId', 'role', 'source', 'reason'],
    'role.revoked': ['userId', 'role', 'source', 'reason'],
  };
  t.same(NOTIFICATION_CONTRACTS.map((c) => c.type).sort(), Object.keys(expected).sort());
  for (const c of NOTIFICATION_CONTRACTS) {
    t.equal(c.exchange, EXCHANGES.notifications);
    t.equal(c.routingKey, `billing.${c.type}`);
    const schema = c.schema as unknown as {
      properties: Record<string, unknown>;
      required: string[];
      additionalProperties: boolean;
    };
    t.same(Object.keys(schema.properties).sort(), [...(expected[c.type] ?? [])].sort(), `${c.type} fields`);
    t.same(
      [...schema.required].sort(),
      [...(expected[c.type] ?? [])].sort(),
      `${c.type}: every field present (null when without value)`,
    );
    t.equal(schema.additionalProperties, false);
  }
  t.equal(EXCHANGES.notifications, 'notifications');
  t.equal(QUEUES.notifications, 'notifications.billing');
  t.equal(NOTIFICATIONS_BINDING, 'billing.#');
});

t.test('the envelope', async (t) => {
  const v = Compile(EnvelopeSchema);
  const ok = {
    id: '6f1c2a7e-8b1d-4c39-9a55-0d7f8e2b1c44',
    type: 'role.granted',
    version: 1,
    occurredAt: '2026-11-26T10:00:00.000Z',
    correlationId: 'req-1',
    data: {},
  };
  t.ok(v.Check(ok));
  t.notOk(v.Check({ ...ok, version: 2 }), 'version is 1');
  t.notOk(v.Check({ ...ok, id: 'x' }), 'id is a UUID');
  t.notOk(v.Check({ ...ok, occurredAt: 'yesterday' }), 'occurredAt is ISO 8601');
  t.notOk(v.Check({ ...ok, extra: 1 }), 'nothing else');
  const { correlationId: _c, ...noCorrelation } = ok;
  t.notOk(v.Check(noCorrelation), 'correlationId is required');
});
