import t from 'tap';
import { revenueMovements, type PaidPeriod } from '../src/api/revenue.js';

// docs/admin.md, revenue: MRR at the price charged and its movements, month by month.
const d = (s: string) => new Date(`${s}T00:00:00Z`);
const paid = (subscriptionId: string, amount: number, start: string, end: string, period = 'P1M', currency = 'USD') =>
  ({ subscriptionId, currency, amount, period, start: d(start), end: d(end) }) satisfies PaidPeriod;
const now = new Date('2026-12-06T12:00:00Z');
const result = revenueMovements(
  [
    paid('a', 1000, '2026-10-15', '2026-11-15'),
    paid('a', 1000, '2026-11-15', '2026-12-15'),
    paid('b', 2000, '2026-09-01', '2026-10-01'),
    paid('c', 12000, '2026-03-01', '2027-03-01', 'P1Y'),
    paid('d', 500, '2026-07-01', '2026-08-01'),
    paid('d', 500, '2026-10-01', '2026-11-01'),
    paid('e', 1000, '2026-11-01', '2026-12-01'),
    paid('e', 1500, '2026-12-01', '2027-01-01'),
    paid('f', 900, '2026-12-01', '2027-01-01', 'P1M', 'EUR'),
  ],
  now,
);

t.test('per currency, the last 12 months ending with this one', async (t) => {
  t.same(
    result.map((r) => r.currency),
    ['EUR', 'USD'],
  );
  const usd = result.find((r) => r.currency === 'USD')!.months;
  t.equal(usd.length, 12);
  t.equal(usd[0]!.month, '2026-01');
  t.equal(usd[11]!.month, '2026-12');
});

t.test('each movement, and the churn rate over the MRR at the month start', async (t) => {
  const usd = new Map(result.find((r) => r.currency === 'USD')!.months.map((m) => [m.month, m]));
  t.match(usd.get('2026-03'), { mrr: 1000, new: 1000 }, 'a yearly plan counts a twelfth a month');
  t.match(usd.get('2026-07'), { mrr: 1000 + 500, new: 500 });
  t.match(usd.get('2026-08'), { mrr: 1000, churn: 500, churnRate: 33.3 });
  t.match(usd.get('2026-09'), { mrr: 1000 + 2000, new: 2000, churn: 0, churnRate: 0 });
  t.same(usd.get('2026-10'), {
    month: '2026-10',
    mrr: 1000 + 1000 + 500,
    new: 1000,
    expansion: 0,
    contraction: 0,
    churn: 2000,
    reactivation: 500,
    churnRate: 66.7,
  });
  t.match(usd.get('2026-11'), { mrr: 3000, new: 1000, churn: 500, churnRate: 20 });
  t.match(usd.get('2026-12'), { mrr: 3500, expansion: 500, contraction: 0, churn: 0 }, 'this month: up to now');
  t.match(usd.get('2026-01'), { mrr: 0, churnRate: null }, 'nothing before: no rate');
  const eur = result.find((r) => r.currency === 'EUR')!.months;
  t.match(eur[11], { month: '2026-12', mrr: 900, new: 900 });
});

t.test('a contraction, and nothing at all', async (t) => {
  const [r] = revenueMovements(
    [paid('x', 2000, '2026-10-01', '2026-11-01'), paid('x', 1200, '2026-11-01', '2026-12-01')],
    new Date('2026-11-20T00:00:00Z'),
    2,
  );
  t.match(r!.months, [
    { month: '2026-10', new: 2000 },
    { month: '2026-11', mrr: 1200, contraction: 800 },
  ]);
  t.same(revenueMovements([], now), []);
});

t.test('a paused subscription counts nothing while paused (docs/api.md, pause)', async (t) => {
  const withPause = revenueMovements(
    [paid('p', 1000, '2026-09-01', '2026-10-01'), paid('p', 1000, '2026-10-01', '2026-12-20')],
    now,
    12,
    [{ subscriptionId: 'p', from: d('2026-10-20'), to: d('2026-11-10') }],
  )[0]!.months;
  const [sep, oct, nov] = ['2026-09', '2026-10', '2026-11'].map((m) => withPause.find((x) => x.month === m)!);
  t.match(sep, { mrr: 1000, new: 1000 });
  t.match(oct, { mrr: 0, churn: 1000 }, 'paused at the end of October');
  t.match(nov, { mrr: 1000, reactivation: 1000 }, 'resumed in November');
  const still = revenueMovements([paid('q', 1000, '2026-11-01', '2026-12-31')], now, 12, [
    { subscriptionId: 'q', from: d('2026-12-02'), to: null },
  ])[0]!.months;
  t.match(still.at(-1), { month: '2026-12', mrr: 0, churn: 1000 }, 'still paused now');
});
