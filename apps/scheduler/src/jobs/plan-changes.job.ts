import type { Db } from '@billing/db';
import { applyDueScheduledChanges } from '@billing/billing-core';
import type { Job } from '../runner.js';

/**
 * docs/api.md, plan changes: a downgrade scheduled for the period end takes effect once that time has come
 * and the period starting then is paid (the renewal charged the new plan's price): plan, price
 * and role switch. Claimed row by row with SKIP LOCKED, so replicas share the work.
 */
export function planChangesJob(db: Db): Job {
  return {
    name: 'plan-changes',
    async run(now) {
      const applied = await applyDueScheduledChanges(db, now);
      return { due: applied, claimed: applied, succeeded: applied, failed: 0 };
    },
  };
}
