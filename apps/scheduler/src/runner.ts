import type { Logger, Metrics } from '@billing/service-kit';

/** A periodic job: handles what is due now and reports how many items it saw. */
export interface Job {
  name: string;
  run(now: Date): Promise<{ due: number; claimed: number; succeeded: number; failed: number }>;
}

/**
 * Runs each job every `intervalMs`, one run of a job at a time in this replica. Several
 * replicas may run the same job: the jobs claim rows, so no due item is handled twice.
 */
export function startJobs(jobs: Job[], intervalMs: number, logger: Logger, metrics: Metrics) {
  let stopped = false;
  const running = new Map<string, Promise<void>>();
  const timers: NodeJS.Timeout[] = [];
  const runOnce = (job: Job) => {
    if (stopped || running.has(job.name)) return;
    const p = (async () => {
      try {
        const r = await job.run(new Date());
        for (const stage of ['due', 'claimed', 'succeeded', 'failed'] as const)
          metrics.jobItems.inc({ job: job.name, stage }, r[stage]);
        metrics.jobRuns.inc({ job: job.name, outcome: 'ok' });
        if (r.due) logger.info('job ran', { job: job.name, ...r });
      } catch (err) {
        metrics.jobRuns.inc({ job: job.name, outcome: 'error' });
        logger.error('job failed', { job: job.name, err });
      } finally {
        running.delete(job.name);
      }
    })();
    running.set(job.name, p);
  };
  for (const job of jobs) {
    runOnce(job);
    timers.push(setInterval(() => runOnce(job), intervalMs));
  }
  return {
    async stop() {
      stopped = true;
      timers.forEach(clearInterval);
      await Promise.allSettled([...running.values()]);
    },
  };
}
