import { periodWindow } from './period.js';

const DAY = 86_400_000;

/**
 * docs/api.md, free trials: a trial that starts at `start` and lasts `trialPeriod` (anchored arithmetic, as
 * periods), and when `subscription.trial_will_end` is due: 3 days before its end, or at half the
 * trial when the trial is shorter than 6 days.
 */
export function trialSchedule(start: Date, trialPeriod: string): { start: Date; end: Date; noticeAt: Date } {
  const { end } = periodWindow(start, trialPeriod, 0);
  const length = end.getTime() - start.getTime();
  const lead = length < 6 * DAY ? Math.floor(length / 2) : 3 * DAY;
  return { start, end, noticeAt: new Date(end.getTime() - lead) };
}
