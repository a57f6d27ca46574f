import { resumeDuePauses } from '@billing/billing-core';
import type { Db } from '@billing/db';
import type { Job } from '../runner.js';

/** docs/scheduler.md, pauses ending: a paused subscription resumes by itself at its `resumesAt`. */
export function pausesJob(db: Db): Job {
  return {
    name: 'pauses',
    async run(now) {
      const resumed = await resumeDuePauses(db, now);
      return { due: resumed, claimed: resumed, succeeded: resumed, failed: 0 };
    },
  };
}
