import { Type } from 'typebox';
import { Nullable, PaymentSchema, Problem, SubscriptionSchema, Ts } from '@billing/http-api';

export const Reason = Type.String({ minLength: 1, maxLength: 1000 });
export const Slug = Type.String({ pattern: '^[a-z0-9-]{1,64}$' });
export const UserId = Type.String({ minLength: 1, maxLength: 200 });
export const RoleName = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,100}$' });
export const IdParams = Type.Object({ id: Type.String({ maxLength: 200 }) });
export const UserParams = Type.Object({ userId: UserId });

export const ListQuery = Type.Object({
  userId: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.String({ maxLength: 40 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});

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
  },
  { additionalProperties: false },
);
export const PlanPatch = Type.Partial(PlanBody, { additionalProperties: false });

export const AdminPayment = Type.Object({ ...PaymentSchema.properties, userId: Type.String() });
export const AdminSubscription = Type.Object({ ...SubscriptionSchema.properties, userId: Type.String() });
const JsonValue = Type.Unknown();

export const PaymentDetail = Type.Object({
  ...AdminPayment.properties,
  providerOrderId: Nullable(Type.String()),
  providerCaptureId: Nullable(Type.String()),
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
});

export const UserDetail = Type.Object({
  userId: Type.String(),
  roles: Type.Array(Type.String()),
  subscriptions: Type.Array(SubscriptionSchema),
  grants: Type.Array(
    Type.Object({
      id: Type.String(),
      role: Type.String(),
      source: Type.String(),
      subscriptionId: Nullable(Type.String()),
      reason: Nullable(Type.String()),
      grantedBy: Nullable(Type.String()),
      startedAt: Ts,
      endedAt: Nullable(Ts),
      endReason: Nullable(Type.String()),
    }),
  ),
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
  body: JsonValue,
});

export const AuditEntry = Type.Object({
  id: Type.String(),
  at: Ts,
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  reason: Nullable(Type.String()),
  before: JsonValue,
  after: JsonValue,
});
