import t from 'tap';
import { trialSchedule } from '../src/trial.js';

const at = new Date('2026-01-31T10:00:00.000Z');
const iso = (d: Date) => d.toISOString();

t.test('a trial of 6 days or more: told 3 days before its end', async (t) => {
  const s = trialSchedule(at, 'P14D');
  t.equal(iso(s.end), '2026-02-14T10:00:00.000Z');
  t.equal(iso(s.noticeAt), '2026-02-11T10:00:00.000Z');
  const six = trialSchedule(at, 'P6D');
  t.equal(iso(six.noticeAt), '2026-02-03T10:00:00.000Z', 'exactly 6 days: 3 days before');
  const month = trialSchedule(at, 'P1M');
  t.equal(iso(month.end), '2026-02-28T10:00:00.000Z', 'anchored month arithmetic, as periods');
  t.equal(iso(month.noticeAt), '2026-02-25T10:00:00.000Z');
});

t.test('a trial shorter than 6 days: told at half the trial', async (t) => {
  t.equal(iso(trialSchedule(at, 'P5D').noticeAt), '2026-02-02T22:00:00.000Z');
  const short = trialSchedule(at, 'PT30S');
  t.equal(iso(short.end), '2026-01-31T10:00:30.000Z');
  t.equal(iso(short.noticeAt), '2026-01-31T10:00:15.000Z');
  t.equal(iso(trialSchedule(at, 'PT1S').noticeAt), '2026-01-31T10:00:00.500Z');
});
