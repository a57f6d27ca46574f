import type { Insertable, Selectable } from 'kysely';
import type { Timestamp } from './common.js';

/** What the role-worker's last change made the Auth service show for a user and role (docs/auth.md). */
export interface AuthRoleStatesTable {
  user_id: string;
  role: string;
  held: boolean;
  updated_at: Timestamp;
}
export type AuthRoleStateRow = Selectable<AuthRoleStatesTable>;
export type NewAuthRoleStateRow = Insertable<AuthRoleStatesTable>;
