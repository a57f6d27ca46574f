import { createHealthServer, createRuntime, serve } from '@billing/runtime';
import { loadOrExit } from '@billing/service-kit';
import { loadSchedulerConfig } from './config.js';
import { expiryJob } from './jobs/expiry.job.js';
import { reconciliationJob } from './jobs/reconciliation.job.js';
import { remindersJob } from './jobs/reminders.job.js';
import { pausesJob } from './jobs/pauses.job.js';
import { planChangesJob } from './jobs/plan-changes.job.js';
import { renewalsJob } from './jobs/renewals.job.js';
import { trialsJob } from './jobs/trials.job.js';
import { startJobs, type Job } from './runner.js';

const service = 'scheduler';
const config = loadOrExit(service, loadSchedulerConfig);
const rt = createRuntime(service, config);
const jobs: Job[] = [
  renewalsJob(rt.db, config.RENEWAL_LEAD_MS),
  expiryJob(rt.db),
  planChangesJob(rt.db),
  trialsJob(rt.db),
  pausesJob(rt.db),
  remindersJob(rt.db, { lead: config.RENEWAL_REMINDER_LEAD, yearlyLead: config.RENEWAL_REMINDER_LEAD_YEARLY }),
  reconciliationJob(rt.db, config.RECONCILE_AFTER_MS, config.CHECKOUT_TTL_MS),
];
const runner = startJobs(jobs, config.SCHEDULER_INTERVAL_MS, rt.logger, rt.metrics);
await serve(rt, { app: createHealthServer(rt), port: config.PORT, stopWork: runner.stop });
