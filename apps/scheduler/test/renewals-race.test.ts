import { randomUUID } from 'node:crypto';
import t from 'tap';
import { createDb, importCatalog, type Db } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { renewalsJob } from '../src/jobs/renewals.job.js';

// docs/guarantees.md, one payment per period: scheduler replicas released at the same instant over the same due
// renewals must create exactly one renewal payment per subscription and period. Each replica
// has its own pool, as separate processes would; several rounds, each on fresh subscriptions.
const REPLICAS = 5;
const DUE = Number(process.env['RACE_RENEWALS'] ?? 1500);
const ROUNDS = Number(process.env['RACE_ROUNDS'] ?? 3);

const tdb = await createMigratedTestDb();
const replicas: Db[] = Array.from({ length: REPLICAS }, (_, i) =>
  createDb(tdb.url, { max: 2, applicationName: `scheduler-${i}` }),
);
t.teardown(async () => {
  await Promise.all(replicas.map((db) => db.destroy()));
  await tdb.drop();
});
await importCatalog(tdb.db, [
  {
    id: 'hourly',
    name: 'Hourly',
    description: '',
    amount: 120,
    currency: 'USD',
    period: 'PT1H',
    role: 'hourly',
    active: true,
  },
]);

async function seed(n: number, now: number): Promise<string[]> {
  const anchor = new Date(now - 3_600_000 + 1_000);
  const rows = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    user_id: `race-${now}-${i}`,
    plan_id: 'hourly',
    plan_name: 'Hourly',
    role: 'hourly',
    amount: 120,
    currency: 'USD',
    period: 'PT1H',
    status: 'active' as const,
    anchor_at: anchor,
    paid_through: new Date(anchor.getTime() + 3_600_000),
    vault_id: `v-${i}`,
  }));
  for (let i = 0; i < rows.length; i += 500)
    await tdb.db
      .insertInto('subscriptions')
      .values(rows.slice(i, i + 500))
      .execute();
  return rows.map((r) => r.id);
}

for (let round = 1; round <= ROUNDS; round++) {
  t.test(`round ${round}: ${REPLICAS} replicas released at once over ${DUE} due renewals`, async (t) => {
    const now = Date.now();
    const ids = await seed(DUE, now);
    const jobs = replicas.map((db) => renewalsJob(db, 60_000));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runs = jobs.map(async (job) => {
      await gate;
      return job.run(new Date(now));
    });
    release();
    const results = await Promise.all(runs);
    const claimed = results.reduce((s, r) => s + r.claimed, 0);
    const rows = await tdb.db
      .selectFrom('payments')
      .select(['subscription_id', 'period_index', (eb) => eb.fn.countAll<string>().as('n')])
      .where('subscription_id', 'in', ids)
      .groupBy(['subscription_id', 'period_index'])
      .execute();
    const twice = rows.filter((r) => Number(r.n) > 1).length;
    t.comment(
      `claims per replica: ${results.map((r) => r.claimed).join(', ')}; subscriptions with two renewal payments: ${twice}`,
    );
    t.equal(rows.length, DUE, 'every due subscription got a renewal payment');
    t.equal(twice, 0, 'no subscription got two renewal payments for one period');
    t.equal(claimed, DUE, "the replicas' claims add up to the due subscriptions");
    const messages = await tdb.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('type', '=', 'payment.renewal.requested')
      .executeTakeFirstOrThrow();
    t.equal(Number(messages.n), DUE * round, 'one charge request per renewal payment');
  });
}

t.test(
  'a period whose payment was refunded or charged back at PayPal can be paid again (after a resume)',
  async (t) => {
    const now = Date.now();
    const [id] = await seed(1, now);
    const sub = await tdb.db.selectFrom('subscriptions').selectAll().where('id', '=', id!).executeTakeFirstOrThrow();
    await tdb.db
      .insertInto('payments')
      .values({
        id: randomUUID(),
        subscription_id: id!,
        user_id: sub.user_id,
        kind: 'renewal',
        amount: 120,
        currency: 'USD',
        status: 'reversed',
        period_index: 1,
        period_start: sub.paid_through,
        period_end: new Date(sub.paid_through!.getTime() + 3_600_000),
      })
      .execute();
    const r = await renewalsJob(tdb.db, 60_000).run(new Date(now));
    t.equal(r.claimed, 1, 'claimed');
    const open = await tdb.db
      .selectFrom('payments')
      .selectAll()
      .where('subscription_id', '=', id!)
      .where('status', '=', 'created')
      .execute();
    t.match(open, [{ period_index: 1, attempt: 1 }], 'a new renewal payment for the lost period');
    await tdb.db
      .updateTable('payments')
      .set({ status: 'completed', period_start: sub.paid_through })
      .where('id', '=', open[0]!.id)
      .execute();
    t.pass('and it may complete: one payment holds money for the period');
  },
);
