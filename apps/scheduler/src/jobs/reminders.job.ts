import { remindRenewals, type ReminderLeads } from '@billing/billing-core';
import type { Db } from '@billing/db';
import type { Job } from '../runner.js';

/** docs/scheduler.md, renewal reminders: `subscription.renewal_upcoming` once per period, before it renews. */
export function remindersJob(db: Db, leads: ReminderLeads): Job {
  return {
    name: 'reminders',
    async run(now) {
      const told = await remindRenewals(db, now, leads);
      return { due: told, claimed: told, succeeded: told, failed: 0 };
    },
  };
}
