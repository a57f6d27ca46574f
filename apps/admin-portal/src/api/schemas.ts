import { Type } from 'typebox';
import { PAYMENT_STATUSES, SUBSCRIPTION_STATUSES } from '@billing/domain';
import { Nullable, PaymentSchema, Problem, SubscriptionSchema, Ts } from '@billing/http-api';

export const Reason = Type.String({ minLength: 1, maxLength: 1000 });
export const Slug = Type.String({ pattern: '^[a-z0-9-]{1,64}$' });
export const UserId = Type.String({ minLength: 1, maxLength: 200 });
export const RoleName = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,100}$' });
export const IdParams = Type.Object({ id: Type.String({ maxLength: 200 }) });
export const UserParams = Type.Object({ userId: UserId });

const Page = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};
/** A day (`2026-11-01`) or an instant (ISO 8601); `to` is exclusive. */
const Instant = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,3})?)?(Z|[+-]\\d{2}:\\d{2})?)?$',
});
const Filters = {
  userId: Type.Optional(Type.String({ maxLength: 200 })),
  planId: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,64}$' })),
  from: Type.Optional(Instant),
  to: Type.Optional(Instant),
  ...Page,
};
export const PaymentListQuery = Type.Object(
  { ...Filters, status: Type.Optional(Type.Enum([...PAYMENT_STATUSES])) },
  { additionalProperties: false },
);
export const SubscriptionListQuery = Type.Object(
  { ...Filters, status: Type.Optional(Type.Enum([...SUBSCRIPTION_STATUSES])) },
  { additionalProperties: false },
);
export const UserListQuery = Type.Object(
  { q: Type.Optional(Type.String({ maxLength: 200 })), ...Page },
  { additionalProperties: false },
);
export const DeadLetterListQuery = Type.Object(
  {
    status: Type.Optional(Type.Enum(['open', 'replayed', 'discarded'])),
    queue: Type.Optional(Type.String({ maxLength: 200 })),
    ...Page,
  },
  { additionalProperties: false },
);
export const AuditListQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ maxLength: 200 })),
    action: Type.Optional(Type.String({ maxLength: 100 })),
    target: Type.Optional(Type.String({ maxLength: 300 })),
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    ...Page,
  },
  { additionalProperties: false },
);

/** `from`/`to` of a list query as instants (a bare day is midnight UTC). */
export function instant(v: string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v.length === 10 ? `${v}T00:00:00Z` : v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Every error an admin route may answer, as problem+json. */
export const errors = {
  400: Problem,
  401: Problem,
  403: Problem,
  404: Problem,
  409: Problem,
  413: Problem,
  415: Problem,
  422: Problem,
  503: Problem,
};

export const Accepted = Type.Object({ status: Type.String() });

export const PlanBody = Type.Object(
  {
    id: Slug,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 2000 }),
    amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    currency: Type.String({ minLength: 3, maxLength: 3 }),
    period: Type.String({ minLength: 2, maxLength: 40 }),
    role: RoleName,
    active: Type.Boolean(),
    /** docs/api.md, free trials: a free trial before the first period, or null (none). */
    trialPeriod: Type.Optional(Type.Union([Type.String({ minLength: 2, maxLength: 40 }), Type.Null()])),
    /** docs/scheduler.md: the retries of a failed renewal (ISO 8601 durations), or null (DUNNING_RETRY_MS). */
    dunningSchedule: Type.Optional(
      Type.Union([Type.Array(Type.String({ minLength: 2, maxLength: 40 }), { maxItems: 10 }), Type.Null()]),
    ),
    /** docs/api.md, pause: the longest pause (ISO 8601 duration), or null (P3M). */
    maxPause: Type.Optional(Type.Union([Type.String({ minLength: 2, maxLength: 40 }), Type.Null()])),
  },
  { additionalProperties: false },
);
/** An operator may say why (kept in the audit log). */
export const PlanCreate = Type.Object(
  { ...PlanBody.properties, reason: Type.Optional(Reason) },
  { additionalProperties: false },
);
export const PlanPatch = Type.Object(
  { ...Type.Partial(PlanBody).properties, reason: Type.Optional(Reason) },
  { additionalProperties: false },
);

export const AdminPayment = Type.Object({ ...PaymentSchema.properties, userId: Type.String() });
export const AdminSubscription = Type.Object({ ...SubscriptionSchema.properties, userId: Type.String() });
const JsonValue = Type.Unknown();

export const AuditEntry = Type.Object({
  id: Type.String(),
  at: Ts,
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  reason: Nullable(Type.String()),
  before: Type.Unknown(),
  after: Type.Unknown(),
});

const Grant = Type.Object({
  id: Type.String(),
  role: Type.String(),
  source: Type.String(),
  subscriptionId: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  grantedBy: Nullable(Type.String()),
  startedAt: Ts,
  endedAt: Nullable(Ts),
  endReason: Nullable(Type.String()),
});

/** docs/disputes.md: an operator's answer to a dispute, sent to PayPal by the payment-worker. */
export const DisputeAction = Type.Object({
  id: Type.String(),
  action: Type.Union([Type.Literal('accept_claim'), Type.Literal('provide_evidence')]),
  note: Type.String(),
  status: Type.Union([Type.Literal('requested'), Type.Literal('sent'), Type.Literal('refused')]),
  failureReason: Nullable(Type.String()),
  requestedBy: Nullable(Type.String()),
  createdAt: Ts,
});

/** docs/disputes.md: a PayPal dispute against one of our payments, as PayPal last showed it. */
export const Dispute = Type.Object({
  id: Type.String(),
  providerDisputeId: Type.String(),
  paymentId: Type.String(),
  userId: Type.String(),
  amount: Type.Integer(),
  currency: Type.String(),
  reason: Nullable(Type.String()),
  status: Type.String(),
  stage: Nullable(Type.String()),
  outcome: Nullable(Type.String()),
  result: Type.Union([Type.Literal('open'), Type.Literal('lost'), Type.Literal('won')]),
  createdAt: Ts,
  updatedAt: Ts,
  resolvedAt: Nullable(Ts),
  actions: Type.Array(DisputeAction),
});

export const PaymentDetail = Type.Object({
  ...AdminPayment.properties,
  providerOrderId: Nullable(Type.String()),
  providerCaptureId: Nullable(Type.String()),
  planId: Type.String(),
  subscriptionStatus: Type.String(),
  /** What can still be refunded (minor units): 0 unless completed or partially refunded. */
  refundableAmount: Type.Integer(),
  receiptNumber: Nullable(Type.String()),
  creditNotes: Type.Array(
    Type.Object({ number: Type.String(), refundId: Nullable(Type.String()), amount: Type.Integer(), issuedAt: Ts }),
  ),
  audit: Type.Array(AuditEntry),
  events: Type.Array(
    Type.Object({ type: Type.String(), id: Type.String(), receivedAt: Ts, outcome: Nullable(Type.String()) }),
  ),
  refunds: Type.Array(
    Type.Object({
      id: Type.String(),
      amount: Type.Integer(),
      currency: Type.String(),
      status: Type.String(),
      origin: Type.String(),
      reason: Nullable(Type.String()),
      failureReason: Nullable(Type.String()),
      createdAt: Ts,
    }),
  ),
  disputes: Type.Array(Dispute),
});

export const UserDetail = Type.Object({
  userId: Type.String(),
  roles: Type.Array(Type.String()),
  subscriptions: Type.Array(SubscriptionSchema),
  grants: Type.Array(Grant),
});

export const PlanChange = Type.Object({
  id: Type.String(),
  fromPlanId: Type.String(),
  toPlanId: Type.String(),
  kind: Type.String(),
  status: Type.String(),
  amount: Type.Integer(),
  currency: Type.String(),
  effectiveAt: Ts,
  paymentId: Nullable(Type.String()),
  failureReason: Nullable(Type.String()),
  createdAt: Ts,
});

export const SubscriptionDetail = Type.Object({
  ...AdminSubscription.properties,
  payments: Type.Array(AdminPayment),
  planChanges: Type.Array(PlanChange),
  grants: Type.Array(Grant),
  audit: Type.Array(AuditEntry),
});

export const UserSummary = Type.Object({
  userId: Type.String(),
  subscriptions: Type.Integer(),
  activeSubscriptions: Type.Integer(),
  payments: Type.Integer(),
  lastActivityAt: Ts,
});

const Money = Type.Object({ currency: Type.String(), amount: Type.Integer() });
export const Stats = Type.Object({
  at: Ts,
  activeSubscriptions: Type.Integer(),
  /** Monthly recurring revenue per currency: each active subscription's price scaled to 30 days (minor units). */
  mrr: Type.Array(Money),
  newThisMonth: Type.Integer(),
  churnedThisMonth: Type.Integer(),
  inDunning: Type.Integer(),
  /** Subscriptions in their free trial (docs/api.md, free trials): not in the MRR until their first charge. */
  inTrial: Type.Integer(),
  failedPaymentsThisMonth: Type.Integer(),
  refundedThisMonth: Type.Array(Money),
  revenuePerDay: Type.Array(Type.Object({ day: Type.String(), currency: Type.String(), amount: Type.Integer() })),
  subscriptionsByPlan: Type.Array(
    Type.Object({ planId: Type.String(), active: Type.Integer(), total: Type.Integer() }),
  ),
  /** docs/api.md, cancel: the reasons buyers gave for what ended this month or is set to end, most given first. */
  cancelReasonsThisMonth: Type.Array(Type.Object({ reason: Type.String(), count: Type.Integer() })),
  /** docs/api.md, retention offer: offers made this month, and accepted. */
  retentionThisMonth: Type.Object({ offered: Type.Integer(), accepted: Type.Integer() }),
});
export const grantView = (g: {
  id: string;
  role: string;
  source: string;
  subscription_id: string | null;
  reason: string | null;
  granted_by: string | null;
  started_at: Date;
  ended_at: Date | null;
  end_reason: string | null;
}) => ({
  id: g.id,
  role: g.role,
  source: g.source,
  subscriptionId: g.subscription_id,
  reason: g.reason,
  grantedBy: g.granted_by,
  startedAt: g.started_at.toISOString(),
  endedAt: g.ended_at?.toISOString() ?? null,
  endReason: g.end_reason,
});
export const auditView = (a: {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string;
  reason: string | null;
  before: unknown;
  after: unknown;
}) => ({
  id: a.id,
  at: a.at.toISOString(),
  actor: a.actor,
  action: a.action,
  target: a.target,
  reason: a.reason,
  before: a.before,
  after: a.after,
});

export const DeadLetter = Type.Object({
  id: Type.String(),
  queue: Type.String(),
  messageId: Nullable(Type.String()),
  type: Nullable(Type.String()),
  error: Nullable(Type.String()),
  attempts: Type.Integer(),
  deadAt: Ts,
  replayedAt: Nullable(Ts),
  replayCount: Type.Integer(),
  diedAgainAt: Nullable(Ts),
  status: Type.Enum(['open', 'replayed', 'discarded']),
  discardedAt: Nullable(Ts),
  discardedBy: Nullable(Type.String()),
  discardReason: Nullable(Type.String()),
  body: JsonValue,
});
