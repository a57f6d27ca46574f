import t from 'tap';
import { proratedRefund } from '../src/proration.js';

const s = new Date('2027-01-01T00:00:00.000Z');
const e = new Date('2027-01-31T00:00:00.000Z');
const at = (ms: number) => new Date(s.getTime() + ms);
const len = e.getTime() - s.getTime();

t.test('pro-rata refunds in minor units, rounded down', async (t) => {
  t.equal(proratedRefund({ amount: 1000, left: 1000, periodStart: s, periodEnd: e, cancelledAt: at(len / 2) }), 500);
  t.equal(proratedRefund({ amount: 999, left: 999, periodStart: s, periodEnd: e, cancelledAt: at(len / 3) }), 666);
  t.equal(proratedRefund({ amount: 1000, left: 1000, periodStart: s, periodEnd: e, cancelledAt: at(1) }), 999);
  t.equal(proratedRefund({ amount: 1000, left: 1000, periodStart: s, periodEnd: e, cancelledAt: at(len - 1) }), 0);
});

t.test('never above what is left, never negative', async (t) => {
  t.equal(proratedRefund({ amount: 1000, left: 100, periodStart: s, periodEnd: e, cancelledAt: at(len / 2) }), 100);
  t.equal(proratedRefund({ amount: 1000, left: 0, periodStart: s, periodEnd: e, cancelledAt: at(0) }), 0);
  t.equal(proratedRefund({ amount: 1000, left: 1000, periodStart: s, periodEnd: e, cancelledAt: at(len + 5000) }), 0);
});

t.test('a period not yet begun comes back whole', async (t) => {
  t.equal(
    proratedRefund({ amount: 1000, left: 1000, periodStart: s, periodEnd: e, cancelledAt: at(-86_400_000) }),
    1000,
  );
});

t.test('large amounts over long periods keep precision', async (t) => {
  const ys = new Date('2027-01-01T00:00:00.000Z');
  const ye = new Date('2028-01-01T00:00:00.000Z');
  const c = new Date(ys.getTime() + 1);
  const expected = Number((1_000_000_000n * BigInt(ye.getTime() - c.getTime())) / BigInt(ye.getTime() - ys.getTime()));
  t.equal(
    proratedRefund({ amount: 1_000_000_000, left: 1_000_000_000, periodStart: ys, periodEnd: ye, cancelledAt: c }),
    expected,
  );
  t.equal(expected, 999_999_999);
});
