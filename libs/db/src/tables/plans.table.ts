import type { Insertable, Selectable, Updateable } from 'kysely';
import type { CreatedAt, Generated, UpdatedAt } from './common.js';

export interface PlansTable {
  id: string;
  name: string;
  description: Generated<string>;
  /** Minor units of `currency`. */
  amount: number;
  currency: string;
  /** ISO 8601 duration of one unit. */
  period: string;
  role: string;
  active: Generated<boolean>;
  /** docs/api.md, free trials: a free trial before the first period (ISO 8601 duration), or none. */
  trial_period: string | null;
  /** docs/scheduler.md: the retries of a failed renewal (ISO 8601 durations from its first failure); null: DUNNING_RETRY_MS. */
  dunning_schedule: string[] | null;
  /** docs/api.md, pause: the longest pause (ISO 8601 duration); null: P3M. */
  max_pause: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type PlanRow = Selectable<PlansTable>;
export type NewPlanRow = Insertable<PlansTable>;
export type PlanUpdate = Updateable<PlansTable>;
