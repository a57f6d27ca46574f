import type { Migration } from 'kysely';
import * as initial from './20261126T1400_initial.js';
import * as oneOpenRenewal from './20261128T0400_one_open_renewal.js';
import * as onePaymentHoldsAPeriod from './20261128T0500_one_payment_holds_a_period.js';
import * as grantSettled from './20261128T0600_grant_settled.js';
import * as providerEventSweeps from './20261128T0700_provider_event_sweeps.js';
import * as plansChangedNotify from './20261128T0800_plans_changed_notify.js';
import * as outboxNotifyTrigger from './20261128T0900_outbox_notify_trigger.js';
import * as deadLetterDiscard from './20261128T1000_dead_letter_discard.js';
import * as planChanges from './20261128T1100_plan_changes.js';
import * as receipts from './20261128T1200_receipts.js';
import * as paymentMethods from './20261128T1300_payment_methods.js';
import * as coupons from './20261128T1400_coupons.js';
import * as trials from './20261202T0100_trials.js';
import * as freePeriods from './20261202T0200_free_periods.js';
import * as heldBeforePerRole from './20261205T0100_held_before_per_role.js';
import * as couponPerUser from './20261205T0200_coupon_per_user.js';
import * as forwardOnly from './20261205T0300_forward_only.js';
import * as outboxWokenInProcess from './20261205T0400_outbox_woken_in_process.js';
import * as authRoleStates from './20261207T0400_auth_role_states.js';
import * as outboxOwner from './20261208T0100_outbox_owner.js';
import * as onePendingPerRole from './20261208T0200_one_pending_per_role.js';
import * as revokedVaultTokens from './20261209T0100_revoked_vault_tokens.js';
import * as renewalReminders from './20261206T0100_renewal_reminders.js';
import * as planDunningSchedule from './20261206T0200_plan_dunning_schedule.js';
import * as cancelReason from './20261206T0300_cancel_reason.js';
import * as disputes from './20261207T0100_disputes.js';
import * as pauses from './20261207T0200_pauses.js';
import * as retentionOffer from './20261207T0300_retention_offer.js';

/** Every migration in order; names are timestamps, and a shipped migration is never edited. */
export const migrations: Record<string, Migration> = {
  '20261126T1400_initial': initial,
  '20261128T0400_one_open_renewal': oneOpenRenewal,
  '20261128T0500_one_payment_holds_a_period': onePaymentHoldsAPeriod,
  '20261128T0600_grant_settled': grantSettled,
  '20261128T0700_provider_event_sweeps': providerEventSweeps,
  '20261128T0800_plans_changed_notify': plansChangedNotify,
  '20261128T0900_outbox_notify_trigger': outboxNotifyTrigger,
  '20261128T1000_dead_letter_discard': deadLetterDiscard,
  '20261128T1100_plan_changes': planChanges,
  '20261128T1200_receipts': receipts,
  '20261128T1300_payment_methods': paymentMethods,
  '20261128T1400_coupons': coupons,
  '20261202T0100_trials': trials,
  '20261202T0200_free_periods': freePeriods,
  '20261205T0100_held_before_per_role': heldBeforePerRole,
  '20261205T0200_coupon_per_user': couponPerUser,
  '20261205T0300_forward_only': forwardOnly,
  '20261205T0400_outbox_woken_in_process': outboxWokenInProcess,
  '20261206T0100_renewal_reminders': renewalReminders,
  '20261206T0200_plan_dunning_schedule': planDunningSchedule,
  '20261206T0300_cancel_reason': cancelReason,
  '20261207T0100_disputes': disputes,
  '20261207T0200_pauses': pauses,
  '20261207T0300_retention_offer': retentionOffer,
  '20261207T0400_auth_role_states': authRoleStates,
  '20261208T0100_outbox_owner': outboxOwner,
  '20261208T0200_one_pending_per_role': onePendingPerRole,
  '20261209T0100_revoked_vault_tokens': revokedVaultTokens,
};
