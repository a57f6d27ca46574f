import { Type, type Static } from 'typebox';

/** RFC 9457 problem details, as every app answers errors (docs/api.md). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type Problem = Static<typeof ProblemSchema>;

export const PROBLEM_CODES = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  'already-subscribed': 409,
  'checkout-in-progress': 409,
  'not-resumable': 409,
  'same-plan': 409,
  'not-changeable': 409,
  'role-held-by-subscription': 409,
  'idempotency-key-in-flight': 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'idempotency-key-reused': 422,
  'refund-exceeds': 422,
  'not-refundable': 422,
  'currency-mismatch': 422,
  'no-payment-method': 422,
  'rate-limited': 429,
  'headers-too-large': 431,
  internal: 500,
  'payment-provider-refused': 502,
  'payment-provider-unavailable': 502,
  'auth-service-unavailable': 503,
  'signature-check-unavailable': 503,
  unavailable: 503,
} as const;
export type ProblemCode = keyof typeof PROBLEM_CODES;

export const PROBLEM_TITLES: Record<ProblemCode, string> = {
  validation: 'Invalid request',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  'not-found': 'Not found',
  'already-subscribed': 'Already subscribed',
  'checkout-in-progress': 'Checkout in progress',
  'not-resumable': 'Not resumable',
  'same-plan': 'Already on this plan',
  'not-changeable': 'Plan cannot change now',
  'role-held-by-subscription': 'Role held by a subscription',
  'idempotency-key-in-flight': 'Idempotency key in flight',
  'payload-too-large': 'Payload too large',
  'unsupported-media-type': 'Unsupported media type',
  'idempotency-key-reused': 'Idempotency key reused',
  'refund-exceeds': 'Refund exceeds what is left',
  'not-refundable': 'Not refundable',
  'currency-mismatch': 'Currency mismatch',
  'no-payment-method': 'No payment method',
  'rate-limited': 'Rate limited',
  'headers-too-large': 'Request headers too large',
  internal: 'Internal error',
  'payment-provider-refused': 'Payment provider refused',
  'payment-provider-unavailable': 'Payment provider unavailable',
  'auth-service-unavailable': 'Auth service unavailable',
  'signature-check-unavailable': 'Signature check unavailable',
  unavailable: 'Service unavailable',
};
