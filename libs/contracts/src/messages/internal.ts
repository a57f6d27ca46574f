import { Type, type TSchema } from 'typebox';
import { defineMessage, Uuid } from '../envelope.js';
import { EXCHANGES } from '../topology.js';

const internal = <T extends string, S extends TSchema>(type: T, schema: S) =>
  defineMessage(type, EXCHANGES.internal, type, schema);

/** A provider event was stored by the webhook gateway; the payment-worker acts on it. */
export const ProviderEventReceived = internal(
  'payment.provider-event.received',
  Type.Object(
    {
      providerEventRowId: Uuid,
      provider: Type.Literal('paypal'),
      eventType: Type.String(),
    },
    { additionalProperties: false },
  ),
);

/** Look a checkout's order up at the provider and capture it if approved (return URL, reconciliation). */
export const PaymentCheckRequested = internal(
  'payment.check.requested',
  Type.Object(
    {
      orderId: Type.String({ minLength: 1, maxLength: 64 }),
      source: Type.Union([Type.Literal('return_url'), Type.Literal('reconciliation')]),
      /** Reconciliation past CHECKOUT_TTL_MS: an order still not approved is cancelled (`checkout_expired`). */
      expireUnapproved: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
);

/** Charge a plan change's payment (kind `upgrade`) with the vaulted method (billing-api created it). */
export const PlanChangeChargeRequested = internal(
  'payment.plan-change.requested',
  Type.Object({ paymentId: Uuid }, { additionalProperties: false }),
);

/** The buyer approved saving a new wallet (PayPal's setup token): make the payment token, use it. */
export const PaymentMethodApproved = internal(
  'payment.method.approved',
  Type.Object(
    {
      setupTokenId: Type.String({ minLength: 1, maxLength: 64 }),
      /** `reconciliation`: nobody saw the buyer come back; look the token up at PayPal first. */
      source: Type.Optional(Type.Union([Type.Literal('return_url'), Type.Literal('reconciliation')])),
      /** With `reconciliation`: a trial checkout still unapproved past CHECKOUT_TTL_MS ends (`checkout_expired`). */
      expireUnapproved: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
);

/** Charge a renewal payment with the vaulted method (the scheduler created it). */
export const RenewalChargeRequested = internal(
  'payment.renewal.requested',
  Type.Object(
    {
      paymentId: Uuid,
    },
    { additionalProperties: false },
  ),
);

/** Ask for a role change; the role-worker evaluates docs/auth.md's rule when it applies it. */
export const RoleChangeRequested = internal(
  'role.change.requested',
  Type.Object(
    {
      userId: Type.String({ minLength: 1, maxLength: 200 }),
      role: Type.String({ minLength: 1, maxLength: 100 }),
      source: Type.Union([Type.Literal('subscription'), Type.Literal('manual')]),
      reason: Type.String(),
      forceRevoke: Type.Boolean(),
    },
    { additionalProperties: false },
  ),
);

/** Send a refund row of ours to the provider (retried until the provider takes or refuses it). */
export const RefundRequested = internal(
  'payment.refund.requested',
  Type.Object(
    {
      refundId: Uuid,
    },
    { additionalProperties: false },
  ),
);

/** Send an operator's answer to a PayPal dispute (docs/disputes.md): accept the claim or evidence. */
export const DisputeActionRequested = internal(
  'payment.dispute.action.requested',
  Type.Object({ disputeActionId: Uuid }, { additionalProperties: false }),
);

/** A message used only by the messaging library's own tests and diagnostics. */
export const Ping = internal(
  'diagnostics.ping',
  Type.Object(
    {
      seq: Type.Integer({ minimum: 0 }),
      fail: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
);
