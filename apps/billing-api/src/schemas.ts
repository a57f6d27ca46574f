import { Type } from 'typebox';
import { CANCEL_REASON_CODES } from '@billing/domain';
export { IdParams, ListQuery, PaymentSchema, PlanSchema, Problem, SubscriptionSchema } from '@billing/http-api';

export const CreateSubscriptionBody = Type.Object(
  {
    planId: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
    /** docs/api.md, coupons at checkout: a coupon to redeem. */
    couponCode: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export const CreateSubscriptionQuery = Type.Object({ redirect: Type.Optional(Type.Boolean()) });
export const CheckoutCreated = Type.Object({
  subscriptionId: Type.String({ format: 'uuid' }),
  /** The first payment; null for a free trial (docs/api.md, free trials), whose first charge comes at the trial's end. */
  paymentId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  status: Type.Literal('pending'),
  approvalUrl: Type.String(),
});

export const ChangeBody = Type.Object(
  { planId: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }) },
  { additionalProperties: false },
);
export const ChangeQuery = Type.Object(
  { planId: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }) },
  { additionalProperties: false },
);
export const ChangePreview = Type.Object({
  planId: Type.String(),
  effectiveAt: Type.String({ format: 'date-time' }),
  amountDueNow: Type.Integer(),
  currency: Type.String(),
});

export const CancelBody = Type.Object(
  {
    mode: Type.Optional(Type.Enum(['at_period_end', 'immediately'])),
    /** docs/api.md, cancel: why the buyer leaves, from the list the billing page offers. */
    reason: Type.Optional(Type.Enum(CANCEL_REASON_CODES)),
  },
  { additionalProperties: false },
);

/** docs/api.md, pause: until when (at most the plan's maxPause; none: that longest pause). */
export const PauseBody = Type.Object(
  { resumesAt: Type.Optional(Type.String({ format: 'date-time' })) },
  { additionalProperties: false },
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description: 'Makes the checkout safe to retry: 1 to 255 printable ASCII characters, kept 24 hours',
    }),
  ),
});
