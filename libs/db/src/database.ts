import type { AuditLogTable } from './tables/audit-log.table.js';
import type { AuthRoleStatesTable } from './tables/auth-role-states.table.js';
import type { RevokedVaultTokensTable } from './tables/revoked-vault-tokens.table.js';
import type { CouponRedemptionsTable, CouponsTable } from './tables/coupons.table.js';
import type { DisputeActionsTable, DisputesTable } from './tables/disputes.table.js';
import type { DeadLettersTable } from './tables/dead-letters.table.js';
import type { IdempotencyKeysTable } from './tables/idempotency-keys.table.js';
import type { OutboxTable } from './tables/outbox.table.js';
import type { PaymentMethodRequestsTable } from './tables/payment-method-requests.table.js';
import type { PaymentsTable } from './tables/payments.table.js';
import type { PlanChangesTable } from './tables/plan-changes.table.js';
import type { PlansTable } from './tables/plans.table.js';
import type { DocumentCountersTable, ReceiptsTable } from './tables/receipts.table.js';
import type { ProcessedMessagesTable } from './tables/processed-messages.table.js';
import type { ProviderEventsTable } from './tables/provider-events.table.js';
import type { RefundsTable } from './tables/refunds.table.js';
import type { RoleGrantsTable } from './tables/role-grants.table.js';
import type { SubscriptionPausesTable, SubscriptionsTable } from './tables/subscriptions.table.js';

/** The Kysely schema of the whole system. */
export interface Database {
  plans: PlansTable;
  subscriptions: SubscriptionsTable;
  payments: PaymentsTable;
  refunds: RefundsTable;
  provider_events: ProviderEventsTable;
  role_grants: RoleGrantsTable;
  outbox: OutboxTable;
  processed_messages: ProcessedMessagesTable;
  dead_letters: DeadLettersTable;
  idempotency_keys: IdempotencyKeysTable;
  audit_log: AuditLogTable;
  plan_changes: PlanChangesTable;
  receipts: ReceiptsTable;
  document_counters: DocumentCountersTable;
  payment_method_requests: PaymentMethodRequestsTable;
  coupons: CouponsTable;
  coupon_redemptions: CouponRedemptionsTable;
  disputes: DisputesTable;
  dispute_actions: DisputeActionsTable;
  subscription_pauses: SubscriptionPausesTable;
  auth_role_states: AuthRoleStatesTable;
  revoked_vault_tokens: RevokedVaultTokensTable;
}
