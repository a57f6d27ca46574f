import type { Static } from 'typebox';
import { AdminPlanSchema, Page, SubscriptionSchema } from '@billing/http-api';
import { Coupon } from '../api/coupons.js';
import {
  AdminPayment,
  AdminSubscription,
  AuditEntry,
  DeadLetter,
  PaymentDetail,
  Stats,
  SubscriptionDetail,
  UserDetail,
  UserSummary,
} from '../api/schemas.js';

// The admin API's answers as the pages read them: the very TypeBox schemas its routes answer with
// (src/api/), so a page cannot read a field the API does not send.

export { PaymentDetail, Stats, SubscriptionDetail, UserDetail, DeadLetter };
export const PlanPage = Page(AdminPlanSchema);
export const CouponPage = Page(Coupon);
export const PaymentPage = Page(AdminPayment);
export const SubscriptionPage = Page(AdminSubscription);
export const AuditPage = Page(AuditEntry);
export const DeadLetterPage = Page(DeadLetter);
export const UserPage = Page(UserSummary);

export type AdminPaymentRow = Static<typeof AdminPayment>;
export type AdminSubscriptionRow = Static<typeof AdminSubscription>;
/** A subscription as a list shows it: the admin API's, or a user's own (without the user). */
export type SubscriptionRow = Static<typeof SubscriptionSchema> & { userId?: string };
export type AuditRow = Static<typeof AuditEntry>;
export type PlanRow = Static<typeof AdminPlanSchema>;
export type CouponRow = Static<typeof Coupon>;
