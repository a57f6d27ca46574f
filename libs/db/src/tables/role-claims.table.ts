import type { Timestamp } from './common.js';

/**
 * Which role-worker replica is changing a user's role at the Auth service, until when (docs/auth.md).
 * One row per user and role, taken and released again and again; `until` null when released.
 */
export interface RoleClaimsTable {
  user_id: string;
  role: string;
  holder: string;
  until: Timestamp | null;
}
