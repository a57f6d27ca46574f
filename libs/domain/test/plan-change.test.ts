import t from 'tap';
import { quotePlanChange } from '../src/plan-change.js';

const start = new Date('2026-11-01T00:00:00.000Z');
const end = new Date('2026-12-01T00:00:00.000Z'); // 30 days
const period = { start, end };
const at = (ms: number) => new Date(start.getTime() + ms);
const T = end.getTime() - start.getTime();

t.test('an upgrade of the same period length: the difference for the time left, floored', async (t) => {
  const now = at(T / 3); // two thirds left
  const q = quotePlanChange({ amount: 999, period: 'P1M' }, { amount: 2999, period: 'P1M' }, period, now);
  t.equal(q.kind, 'upgrade');
  t.equal(q.amountDueNow, Math.floor((2000 * (T - T / 3)) / T), '1333: floor(2000 × 2/3)');
  t.equal(q.amountDueNow, 1333);
  t.same(q.effectiveAt, now);
  // At the very start the whole difference; one millisecond before the end, 0.
  t.equal(
    quotePlanChange({ amount: 999, period: 'P1M' }, { amount: 2999, period: 'P1M' }, period, start).amountDueNow,
    2000,
  );
  t.equal(
    quotePlanChange({ amount: 999, period: 'P1M' }, { amount: 2999, period: 'P1M' }, period, at(T - 1)).amountDueNow,
    0,
  );
  // Amounts and durations far beyond float precision stay exact.
  const big = quotePlanChange({ amount: 1, period: 'P1Y' }, { amount: 1_000_000_000, period: 'P1Y' }, period, at(1));
  t.equal(big.amountDueNow, Number((999_999_999n * BigInt(T - 1)) / BigInt(T)));
});

t.test('another period length: the new price less the unused time of the old, credited', async (t) => {
  const now = at(T / 2);
  const q = quotePlanChange({ amount: 999, period: 'P1M' }, { amount: 9990, period: 'P1Y' }, period, now);
  t.equal(q.kind, 'period_change');
  t.equal(q.credit, 499, 'floor(999 / 2)');
  t.equal(q.amountDueNow, 9990 - 499);
  t.equal(q.refundExcess, 0);
  t.same(q.effectiveAt, now, 'a new period starts now');
  // A credit above the new price: nothing due, the excess refunded.
  const down = quotePlanChange({ amount: 9990, period: 'P1Y' }, { amount: 999, period: 'P1M' }, period, now);
  t.equal(down.credit, 4995);
  t.equal(down.amountDueNow, 0);
  t.equal(down.refundExcess, 4995 - 999);
});

t.test('a lower or equal price on the same period length waits for the period end', async (t) => {
  for (const amount of [499, 999]) {
    const q = quotePlanChange({ amount: 999, period: 'P1M' }, { amount, period: 'P1M' }, period, at(5));
    t.equal(q.kind, 'downgrade');
    t.equal(q.amountDueNow, 0);
    t.same(q.effectiveAt, end);
  }
});

t.test('outside the period: no time left, or all of it; a degenerate period', async (t) => {
  t.equal(
    quotePlanChange({ amount: 100, period: 'P1M' }, { amount: 300, period: 'P1M' }, period, at(T + 5)).amountDueNow,
    0,
  );
  t.equal(
    quotePlanChange({ amount: 100, period: 'P1M' }, { amount: 300, period: 'P1M' }, period, at(-5)).amountDueNow,
    200,
  );
  const flat = { start, end: start };
  t.equal(quotePlanChange({ amount: 100, period: 'P1M' }, { amount: 300, period: 'P1M' }, flat, start).amountDueNow, 0);
});

t.test('periods paid ahead are covered: upgraded, credited, and a downgrade waits for them', async (t) => {
  const nextEnd = new Date('2027-01-01T00:00:00.000Z');
  const ahead = { periods: 1, paid: 999, end: nextEnd };
  const late = at(T - 30 * 60_000); // 30 minutes before the boundary, the next month already paid
  const up = quotePlanChange({ amount: 999, period: 'P1M' }, { amount: 1900, period: 'P1M' }, period, late, ahead);
  t.equal(up.kind, 'upgrade');
  t.equal(up.amountDueNow, Math.floor((901 * 30 * 60_000) / T) + 901, 'the rest of this month and the whole next');
  const yearly = quotePlanChange({ amount: 999, period: 'P1M' }, { amount: 9990, period: 'P1Y' }, period, late, ahead);
  t.equal(yearly.credit, Math.floor((999 * 30 * 60_000) / T) + 999, 'the paid-ahead month is credited');
  t.equal(yearly.amountDueNow, 9990 - yearly.credit);
  const cheapYear = quotePlanChange(
    { amount: 999, period: 'P1M' },
    { amount: 500, period: 'P1Y' },
    period,
    late,
    ahead,
  );
  t.equal(cheapYear.refundExcess, cheapYear.credit - 500, 'an excess over the new price is refunded');
  const down = quotePlanChange({ amount: 1900, period: 'P1M' }, { amount: 999, period: 'P1M' }, period, late, ahead);
  t.same(down.effectiveAt, nextEnd, 'a downgrade waits for the end of what is paid');
  t.same(
    quotePlanChange({ amount: 1900, period: 'P1M' }, { amount: 999, period: 'P1M' }, period, late).effectiveAt,
    end,
    'nothing paid ahead: the period end',
  );
});
