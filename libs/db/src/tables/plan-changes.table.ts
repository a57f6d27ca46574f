import type { Insertable, Selectable } from 'kysely';
import type { CreatedAt, Generated, Timestamp, UpdatedAt } from './common.js';

/** docs/api.md, plan changes: one row per plan change asked for; its status moves, the row stays. */
export interface PlanChangesTable {
  id: string;
  subscription_id: string;
  user_id: string;
  from_plan_id: string;
  to_plan_id: string;
  kind: 'upgrade' | 'period_change' | 'downgrade';
  /** pending (being charged) → applied | failed; scheduled (a downgrade) → applied | dropped. */
  status: 'pending' | 'scheduled' | 'applied' | 'failed' | 'dropped';
  amount: number;
  credit: Generated<number>;
  refund_excess: Generated<number>;
  currency: string;
  payment_id: string | null;
  effective_at: Timestamp;
  failure_reason: string | null;
  /** A change to another role: whether the user held that role before us, read at the request; else null. */
  role_held_before: boolean | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type PlanChangeRow = Selectable<PlanChangesTable>;
export type NewPlanChangeRow = Insertable<PlanChangesTable>;
