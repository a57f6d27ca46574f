import type { Insertable, Selectable, Updateable } from 'kysely';
import type { CreatedAt, Generated, Timestamp } from './common.js';

export interface RoleGrantsTable {
  id: string;
  user_id: string;
  role: string;
  source: 'subscription' | 'manual';
  subscription_id: string | null;
  reason: string | null;
  granted_by: string | null;
  started_at: CreatedAt;
  /** The user held this role at the Auth service before this grant, and no grant of ours gave it (docs/auth.md). */
  held_before: Generated<boolean>;
  /** Null while the grant lives; grants are ended, never deleted. */
  ended_at: Timestamp | null;
  end_reason: string | null;
  /** When the role-worker applied the end at the Auth service; null while that is still to do. */
  settled_at: Timestamp | null;
}
export type RoleGrantRow = Selectable<RoleGrantsTable>;
export type NewRoleGrantRow = Insertable<RoleGrantsTable>;
export type RoleGrantUpdate = Updateable<RoleGrantsTable>;
