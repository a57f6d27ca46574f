import { Type } from 'typebox';
import { ProblemSchema } from '@billing/contracts';
import { PAYMENT_STATUSES, SUBSCRIPTION_STATUSES } from '@billing/domain';

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) => Type.Union([s, Type.Null()]);
export const Ts = Type.String({ format: 'date-time' });

export const PlanSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  amount: Type.Integer(),
  currency: Type.String(),
  period: Type.String(),
  role: Type.String(),
  /** docs/api.md, free trials: a free trial before the first period (ISO 8601 duration), or null. */
  trialPeriod: Nullable(Type.String()),
});

export const SubscriptionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  planId: Type.String(),
  role: Type.String(),
  status: Type.Enum([...SUBSCRIPTION_STATUSES]),
  amount: Type.Integer(),
  currency: Type.String(),
  period: Type.String(),
  currentPeriodStart: Nullable(Ts),
  currentPeriodEnd: Nullable(Ts),
  cancelAtPeriodEnd: Type.Boolean(),
  cancelledAt: Nullable(Ts),
  approvalUrl: Nullable(Type.String()),
  /** A downgrade waiting for the period end (docs/api.md, plan changes), else null. */
  scheduledChange: Nullable(Type.Object({ planId: Type.String(), effectiveAt: Ts })),
  /** docs/api.md, free trials: the free trial's window once it started (the first period begins at its end), else null. */
  trialStart: Nullable(Ts),
  trialEnd: Nullable(Ts),
  /** docs/api.md, pause: the pause in effect (null unless paused). */
  pausedAt: Nullable(Ts),
  resumesAt: Nullable(Ts),
  createdAt: Ts,
});

/** docs/api.md, retention offer: what a buyer about to cancel is offered, once. */
export const RetentionOfferSchema = Type.Object({
  couponCode: Type.String(),
  percentOff: Nullable(Type.Integer()),
  amountOff: Nullable(Type.Integer()),
  currency: Nullable(Type.String()),
  durationPeriods: Nullable(Type.Integer()),
  fromPeriodStart: Ts,
  price: Type.Integer(),
});

export const PaymentSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  subscriptionId: Type.String({ format: 'uuid' }),
  kind: Type.Union([Type.Literal('initial'), Type.Literal('renewal'), Type.Literal('upgrade')]),
  amount: Type.Integer(),
  currency: Type.String(),
  status: Type.Enum([...PAYMENT_STATUSES]),
  refundedAmount: Type.Integer(),
  failureReason: Nullable(Type.String()),
  periodStart: Nullable(Ts),
  periodEnd: Nullable(Ts),
  createdAt: Ts,
});

export const IdParams = Type.Object({ id: Type.String() });
export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});

export const Problem = ProblemSchema;

/** Lists as the API shows them (docs/api.md): `{ items, nextCursor }`, newest first. */
export const Page = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) });

/** A plan as operators see it: the public view and whether it is on sale. */
export const AdminPlanSchema = Type.Object({
  ...PlanSchema.properties,
  active: Type.Boolean(),
  /** docs/scheduler.md: the retries of a failed renewal (ISO 8601 durations), or null (DUNNING_RETRY_MS). */
  dunningSchedule: Nullable(Type.Array(Type.String())),
  /** docs/api.md, pause: the longest pause, or null (P3M). */
  maxPause: Nullable(Type.String()),
});
