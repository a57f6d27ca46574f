import { Type } from 'typebox';
import { ProblemSchema } from '@billing/contracts';

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) => Type.Union([s, Type.Null()]);
const Ts = Type.String({ format: 'date-time' });

export const PlanSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  amount: Type.Integer(),
  currency: Type.String(),
  period: Type.String(),
  role: Type.String(),
});

export const SubscriptionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  planId: Type.String(),
  role: Type.String(),
  status: Type.Enum(['pending', 'active', 'past_due', 'cancelled', 'expired']),
  amount: Type.Integer(),
  currency: Type.String(),
  period: Type.String(),
  currentPeriodStart: Nullable(Ts),
  currentPeriodEnd: Nullable(Ts),
  cancelAtPeriodEnd: Type.Boolean(),
  cancelledAt: Nullable(Ts),
  approvalUrl: Nullable(Type.String()),
  createdAt: Ts,
});

export const PaymentSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  subscriptionId: Type.String({ format: 'uuid' }),
  kind: Type.Union([Type.Literal('initial'), Type.Literal('renewal')]),
  amount: Type.Integer(),
  currency: Type.String(),
  status: Type.Enum([
    'created',
    'pending',
    'approved',
    'completed',
    'failed',
    'cancelled',
    'refunded',
    'partially_refunded',
    'reversed',
  ]),
  refundedAmount: Type.Integer(),
  failureReason: Nullable(Type.String()),
  periodStart: Nullable(Ts),
  periodEnd: Nullable(Ts),
  createdAt: Ts,
});

export const CreateSubscriptionBody = Type.Object(
  { planId: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }) },
  { additionalProperties: false },
);
export const CreateSubscriptionQuery = Type.Object({ redirect: Type.Optional(Type.Boolean()) });
export const CheckoutCreated = Type.Object({
  subscriptionId: Type.String({ format: 'uuid' }),
  paymentId: Type.String({ format: 'uuid' }),
  status: Type.Literal('pending'),
  approvalUrl: Type.String(),
});

export const IdParams = Type.Object({ id: Type.String() });
export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});

export const Problem = ProblemSchema;

export const CancelBody = Type.Object(
  { mode: Type.Optional(Type.Enum(['at_period_end', 'immediately'])) },
  { additionalProperties: false },
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description: 'Makes the checkout safe to retry: 1 to 255 printable ASCII characters, kept 24 hours',
    }),
  ),
});
