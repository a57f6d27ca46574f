import { randomUUID } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { importCatalog } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { dueForRenewal } from '../src/jobs/renewals.job.js';

// The renewals scan while a backlog is being charged (docs/scheduler.md renewals): every due
// subscription but a few has its open renewal payment, and the tables grew since their last
// ANALYZE (none here, as on a fresh database or after a sudden batch). The scan finds exactly the
// unclaimed ones, with work linear in the due subscriptions: no join that compares each due
// subscription with every open payment.
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const db = tdb.db;
await importCatalog(db, [
  { id: 'h', name: 'H', description: '', amount: 120, currency: 'USD', period: 'PT1H', role: 'h', active: true },
]);
const N = 3000;
const now = new Date();
const paidThrough = new Date(now.getTime() - 1000);
const claimed = Array.from({ length: N }, () => randomUUID());
const unclaimed = [randomUUID(), randomUUID(), randomUUID()];
const all = [...claimed, ...unclaimed];
await sql`insert into subscriptions (id, user_id, plan_id, plan_name, role, amount, currency, period, status, anchor_at, paid_through, vault_id)
  select unnest(${all}::uuid[]), 'u-' || unnest(${all}::text[]), 'h', 'H', 'h', 120, 'USD', 'PT1H', 'active',
    ${new Date(paidThrough.getTime() - 3_600_000)}::timestamptz, ${paidThrough}::timestamptz, 'vault'`.execute(db);
await sql`insert into payments (id, subscription_id, user_id, kind, amount, currency, period_index, attempt, status)
  select gen_random_uuid(), id, user_id, 'renewal', 120, 'USD', 1, 0, 'created'
  from subscriptions where id = any(${claimed}::uuid[])`.execute(db);

type PlanNode = { 'Node Type': string; 'Rows Removed by Join Filter'?: number; Plans?: PlanNode[] };
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

t.test('finds the unclaimed due subscriptions, comparing each due one with its own payments only', async (t) => {
  await db.transaction().execute(async (trx) => {
    const found = await dueForRenewal(trx, now, 5_000).execute();
    t.same(found.map((s) => s.id).sort(), [...unclaimed].sort(), 'exactly the three without an open payment');
    const q = dueForRenewal(trx, now, 5_000).compile();
    const explained = await sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>`explain (analyze, format json) ${sql.raw(
      q.sql.replace(/\$(\d+)/g, (_, i: string) => {
        const v = q.parameters[Number(i) - 1];
        return v instanceof Date ? `'${v.toISOString()}'::timestamptz` : typeof v === 'string' ? `'${v}'` : String(v);
      }),
    )}`.execute(trx);
    const plan = nodes(explained.rows[0]!['QUERY PLAN'][0].Plan);
    const compared = plan.reduce((sum, n) => sum + (n['Rows Removed by Join Filter'] ?? 0), 0);
    t.ok(
      compared < N,
      `rows compared and thrown away by a join filter: ${compared} (a quadratic plan: about ${(N * N) / 2})`,
    );
    t.notOk(
      plan.some((n) => n['Node Type'] === 'Nested Loop' && (n['Rows Removed by Join Filter'] ?? 0) > 0),
      'no nested loop filtering every open payment for each subscription',
    );
  });
});
