export interface RoleRuleInput {
  /** Live grants of ours for this user and role: active/past_due subscriptions and manual grants. */
  liveGrants: number;
  /** The user held the role before any grant of ours gave it (read at checkout). */
  heldBeforeUs: boolean;
  /** An operator's revoke: the role goes even if it was given outside this system. */
  forceRevoke?: boolean;
  /** Whether the Auth service shows the role now. */
  heldNow: boolean;
}

export type RoleAction = 'grant' | 'revoke' | 'none';

/**
 * docs/auth.md, evaluated when the change is applied (not when queued), so a late revoke never
 * undoes a newer grant: the role is held while any grant lives, revoked when none does unless
 * the user held it before us, and only a real change at the Auth service is an action.
 */
export function decideRoleAction({
  liveGrants,
  heldBeforeUs,
  forceRevoke = false,
  heldNow,
}: RoleRuleInput): RoleAction {
  if (liveGrants > 0) return heldNow ? 'none' : 'grant';
  if (heldBeforeUs && !forceRevoke) return 'none';
  return heldNow ? 'revoke' : 'none';
}
