import { createHealthServer, createRuntime, serve } from '@billing/runtime';
import { exitOnConfigError } from '@billing/service-kit';
import { loadSchedulerConfig, type SchedulerConfig } from './config.js';
import { startJobs, type Job } from './runner.js';

const service = 'scheduler';
let config: SchedulerConfig;
try {
  config = loadSchedulerConfig();
} catch (err) {
  exitOnConfigError(service, err);
}
const rt = createRuntime(service, config);
// Renewals, expiry and reconciliation (SPEC §8) are registered here as they are built.
const jobs: Job[] = [];
const runner = startJobs(jobs, config.SCHEDULER_INTERVAL_MS, rt.logger, rt.metrics);
await serve(rt, { app: createHealthServer(rt), port: config.PORT, stopWork: runner.stop });
