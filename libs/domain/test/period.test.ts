import t from 'tap';
import { parsePeriod, periodBoundary, periodIndexAt, periodWindow } from '../src/period.js';

const d = (s: string) => new Date(s);

t.test('parses one positive integer unit only', async (t) => {
  t.same(parsePeriod('P1M'), { count: 1, unit: 'M' });
  t.same(parsePeriod('P1Y'), { count: 1, unit: 'Y' });
  t.same(parsePeriod('P2W'), { count: 2, unit: 'W' });
  t.same(parsePeriod('P7D'), { count: 7, unit: 'D' });
  t.same(parsePeriod('PT30S'), { count: 30, unit: 'S' });
  t.same(parsePeriod('PT5M'), { count: 5, unit: 'MIN' });
  t.same(parsePeriod('PT1H'), { count: 1, unit: 'H' });
  for (const bad of ['P0M', 'P1M1D', 'P1.5M', 'PT', 'P', '1M', 'p1m', 'P-1M', 'PT1D', 'P1H', 'P99999M', '']) {
    t.equal(parsePeriod(bad), null, bad);
  }
});

t.test('anchored month-end arithmetic', async (t) => {
  const jan31 = d('2027-01-31T10:00:00.000Z');
  t.equal(periodBoundary(jan31, 'P1M', 1).toISOString(), '2027-02-28T10:00:00.000Z');
  t.equal(periodBoundary(jan31, 'P1M', 2).toISOString(), '2027-03-31T10:00:00.000Z');
  t.equal(periodBoundary(jan31, 'P1M', 3).toISOString(), '2027-04-30T10:00:00.000Z');
  t.equal(periodBoundary(d('2028-01-31T00:00:00.000Z'), 'P1M', 1).toISOString(), '2028-02-29T00:00:00.000Z');
  t.equal(periodBoundary(jan31, 'P2M', 1).toISOString(), '2027-03-31T10:00:00.000Z');
  t.equal(periodBoundary(d('2028-02-29T00:00:00.000Z'), 'P1Y', 1).toISOString(), '2029-02-28T00:00:00.000Z');
  t.equal(periodBoundary(d('2028-02-29T00:00:00.000Z'), 'P1Y', 4).toISOString(), '2032-02-29T00:00:00.000Z');
  t.equal(periodBoundary(d('2027-12-15T00:00:00.000Z'), 'P1M', 1).toISOString(), '2028-01-15T00:00:00.000Z');
  t.equal(periodBoundary(jan31, 'P1M', 0).toISOString(), jan31.toISOString());
});

t.test('fixed-length units', async (t) => {
  const s = d('2027-03-01T00:00:00.000Z');
  t.equal(periodBoundary(s, 'PT30S', 3).toISOString(), '2027-03-01T00:01:30.000Z');
  t.equal(periodBoundary(s, 'P2W', 1).toISOString(), '2027-03-15T00:00:00.000Z');
  t.equal(periodBoundary(s, 'PT1H', 25).toISOString(), '2027-03-02T01:00:00.000Z');
});

t.test('index of the period containing an instant', async (t) => {
  const jan31 = d('2027-01-31T10:00:00.000Z');
  t.equal(periodIndexAt(jan31, 'P1M', jan31), 0);
  t.equal(periodIndexAt(jan31, 'P1M', d('2027-02-28T09:59:59.999Z')), 0);
  t.equal(periodIndexAt(jan31, 'P1M', d('2027-02-28T10:00:00.000Z')), 1);
  t.equal(periodIndexAt(jan31, 'P1M', d('2027-03-31T09:00:00.000Z')), 1);
  t.equal(periodIndexAt(jan31, 'P1M', d('2027-03-31T10:00:00.000Z')), 2);
  t.equal(periodIndexAt(jan31, 'PT30S', d('2027-01-31T10:01:29.999Z')), 2);
  t.equal(periodIndexAt(jan31, 'P1M', d('2027-01-01T00:00:00.000Z')), -1);
  const w = periodWindow(jan31, 'P1M', 1);
  t.equal(w.start.toISOString(), '2027-02-28T10:00:00.000Z');
  t.equal(w.end.toISOString(), '2027-03-31T10:00:00.000Z');
});

t.test('isValidPeriod and malformed input to the arithmetic', async (t) => {
  const { isValidPeriod } = await import('../src/period.js');
  t.ok(isValidPeriod('P1M'));
  t.notOk(isValidPeriod('P1M2'));
  t.throws(() => periodBoundary(new Date(), 'P0D', 1), /malformed period/);
});

t.test('yearly periods and month-end clamping when locating an instant', async (t) => {
  const leap = new Date('2028-02-29T00:00:00.000Z');
  t.equal(periodIndexAt(leap, 'P1Y', new Date('2029-02-27T23:59:59.999Z')), 0);
  t.equal(periodIndexAt(leap, 'P1Y', new Date('2029-02-28T00:00:00.000Z')), 1);
  t.equal(periodIndexAt(leap, 'P1Y', new Date('2032-02-29T00:00:00.000Z')), 4);
  const jan31 = new Date('2027-01-31T10:00:00.000Z');
  t.equal(periodIndexAt(jan31, 'P1M', new Date('2027-03-01T00:00:00.000Z')), 1);
  t.equal(periodIndexAt(jan31, 'P2M', new Date('2027-03-31T10:00:00.000Z')), 1);
});
