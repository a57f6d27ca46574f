import { Type, type TSchema } from 'typebox';
import { defineMessage, IsoTimestamp, Uuid } from '../envelope.js';
import { EXCHANGES } from '../topology.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) => Type.Union([s, Type.Null()]);
const Money = Type.Integer({ minimum: 0, maximum: 1_000_000_000 });
const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const note = <T extends string, S extends TSchema>(type: T, schema: S) =>
  defineMessage(type, EXCHANGES.notifications, `billing.${type}`, schema);

const SubscriptionPeriod = {
  userId: Type.String(),
  subscriptionId: Uuid,
  planId: Type.String(),
  planName: Type.String(),
  role: Type.String(),
  amount: Money,
  currency: Currency,
  currentPeriodStart: IsoTimestamp,
  currentPeriodEnd: IsoTimestamp,
};

export const SubscriptionActivated = note(
  'subscription.activated',
  Type.Object(SubscriptionPeriod, { additionalProperties: false }),
);
/** docs/api.md, plan changes: a plan change took effect (an upgrade paid, a change of period, a downgrade at the period end). */
export const SubscriptionPlanChanged = note(
  'subscription.plan_changed',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      fromPlanId: Type.String(),
      toPlanId: Type.String(),
      effectiveAt: IsoTimestamp,
      amountCharged: Money,
      currency: Currency,
    },
    { additionalProperties: false },
  ),
);
/** An upgrade's charge failed: the subscription stays as it was. */
export const SubscriptionPlanChangeFailed = note(
  'subscription.plan_change_failed',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      fromPlanId: Type.String(),
      toPlanId: Type.String(),
      reason: Type.String(),
    },
    { additionalProperties: false },
  ),
);
/** docs/api.md, …/payment-method: a renewal cannot be charged without the buyer; charging stops until a new method is saved. */
export const SubscriptionPaymentMethodRequired = note(
  'subscription.payment_method_required',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      reason: Type.Union([
        Type.Literal('no_payment_method'),
        Type.Literal('payment_token_deleted'),
        Type.Literal('payer_action_required'),
      ]),
      /** docs/api.md, recovery links. */
      recoveryUrl: Nullable(Type.String()),
    },
    { additionalProperties: false },
  ),
);
const Trial = {
  userId: Type.String(),
  subscriptionId: Uuid,
  planId: Type.String(),
  planName: Type.String(),
  role: Type.String(),
  trialStart: IsoTimestamp,
  trialEnd: IsoTimestamp,
  /** What the first period will cost, charged at `trialEnd` through the saved wallet. */
  amount: Money,
  currency: Currency,
};
/** docs/api.md, free trials: a trial checkout's wallet is saved; the subscription is trialing with its role granted. */
export const SubscriptionTrialStarted = note(
  'subscription.trial_started',
  Type.Object(Trial, { additionalProperties: false }),
);
/** docs/api.md, free trials: 3 days before a trial ends (at half the trial when it is shorter than 6 days). */
export const SubscriptionTrialWillEnd = note(
  'subscription.trial_will_end',
  Type.Object(Trial, { additionalProperties: false }),
);
export const SubscriptionRenewed = note(
  'subscription.renewed',
  Type.Object(SubscriptionPeriod, { additionalProperties: false }),
);
/** docs/scheduler.md, renewal reminders: a renewal is coming, with what it will charge (once per period). */
export const SubscriptionRenewalUpcoming = note(
  'subscription.renewal_upcoming',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      amount: Money,
      currency: Currency,
      renewsAt: IsoTimestamp,
      periodEnd: IsoTimestamp,
    },
    { additionalProperties: false },
  ),
);
export const SubscriptionRenewalFailed = note(
  'subscription.renewal_failed',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      amount: Money,
      currency: Currency,
      reason: Type.String(),
      nextRetryAt: Nullable(IsoTimestamp),
      /** docs/api.md, recovery links: where the buyer replaces the payment method, without signing in. */
      recoveryUrl: Nullable(Type.String()),
    },
    { additionalProperties: false },
  ),
);
export const SubscriptionCancelled = note(
  'subscription.cancelled',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      mode: Type.Union([Type.Literal('at_period_end'), Type.Literal('immediately')]),
      cancelledAt: Nullable(IsoTimestamp),
      endsAt: Nullable(IsoTimestamp),
      refundAmount: Money,
      currency: Currency,
    },
    { additionalProperties: false },
  ),
);
/** docs/api.md, pause: an active subscription is paused (no charge, no role) until `resumesAt` at the latest. */
export const SubscriptionPaused = note(
  'subscription.paused',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      pausedAt: IsoTimestamp,
      resumesAt: IsoTimestamp,
    },
    { additionalProperties: false },
  ),
);
/** docs/api.md, pause: the pause ended; the period in effect now ends at `currentPeriodEnd` (shifted by the pause). */
export const SubscriptionResumed = note(
  'subscription.resumed',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      resumedAt: IsoTimestamp,
      currentPeriodEnd: Nullable(IsoTimestamp),
    },
    { additionalProperties: false },
  ),
);
export const SubscriptionExpired = note(
  'subscription.expired',
  Type.Object(
    {
      userId: Type.String(),
      subscriptionId: Uuid,
      planId: Type.String(),
      planName: Type.String(),
      role: Type.String(),
      expiredAt: IsoTimestamp,
    },
    { additionalProperties: false },
  ),
);
export const PaymentRefunded = note(
  'payment.refunded',
  Type.Object(
    {
      userId: Type.String(),
      paymentId: Uuid,
      refundId: Uuid,
      amount: Money,
      currency: Currency,
      refundedAmount: Money,
      /** docs/api.md, GET /v1/payments/:id/receipt: the credit note issued for this refund. */
      creditNoteNumber: Type.String(),
    },
    { additionalProperties: false },
  ),
);
/** docs/api.md, GET /v1/payments/:id/receipt: a payment completed; its receipt is issued. */
export const PaymentCompleted = note(
  'payment.completed',
  Type.Object(
    {
      userId: Type.String(),
      paymentId: Uuid,
      subscriptionId: Uuid,
      kind: Type.Union([Type.Literal('initial'), Type.Literal('renewal'), Type.Literal('upgrade')]),
      amount: Money,
      currency: Currency,
      receiptNumber: Type.String(),
      receiptUrl: Type.String(),
    },
    { additionalProperties: false },
  ),
);
const RoleChange = Type.Object(
  {
    userId: Type.String(),
    role: Type.String(),
    source: Type.Union([Type.Literal('subscription'), Type.Literal('manual')]),
    reason: Type.String(),
  },
  { additionalProperties: false },
);
export const RoleGranted = note('role.granted', RoleChange);
export const RoleRevoked = note('role.revoked', RoleChange);

export const NOTIFICATION_CONTRACTS = [
  SubscriptionActivated,
  SubscriptionPlanChanged,
  SubscriptionPlanChangeFailed,
  SubscriptionPaymentMethodRequired,
  SubscriptionTrialStarted,
  SubscriptionTrialWillEnd,
  SubscriptionRenewed,
  SubscriptionRenewalUpcoming,
  SubscriptionRenewalFailed,
  SubscriptionCancelled,
  SubscriptionPaused,
  SubscriptionResumed,
  SubscriptionExpired,
  PaymentRefunded,
  PaymentCompleted,
  RoleGranted,
  RoleRevoked,
] as const;
