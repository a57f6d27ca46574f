import t from 'tap';
import { sql } from 'kysely';
import { migrateToLatest } from '../src/migrator.js';
import { createMigratedTestDb as createTestDatabase } from '../src/testing.js';

t.test('migrations apply to an empty database, and a second run applies nothing', async (t) => {
  const tdb = await createTestDatabase({ migrate: false });
  t.teardown(() => tdb.drop());
  const first = await migrateToLatest(tdb.db);
  t.ok(first.length >= 1, 'applied at least one migration');
  t.ok(first.every((r) => r.status === 'Success'));
  const tables = await sql<{
    table_name: string;
  }>`select table_name from information_schema.tables where table_schema = 'public' order by 1`.execute(tdb.db);
  const names = tables.rows.map((r) => r.table_name);
  for (const tbl of [
    'plans',
    'subscriptions',
    'payments',
    'refunds',
    'provider_events',
    'role_grants',
    'outbox',
    'processed_messages',
    'dead_letters',
    'idempotency_keys',
    'audit_log',
  ]) {
    t.ok(names.includes(tbl), `table ${tbl} exists`);
  }
  const second = await migrateToLatest(tdb.db);
  t.same(second, [], 'nothing applied the second time');
});

t.test('money is integer minor units, and history is never deleted', async (t) => {
  const tdb = await createTestDatabase();
  t.teardown(() => tdb.drop());
  const { db } = tdb;
  await db
    .insertInto('plans')
    .values({
      id: 'pro',
      name: 'Pro',
      description: '',
      amount: 999_999_999,
      currency: 'USD',
      period: 'P1M',
      role: 'premium',
      active: true,
    })
    .execute();
  const plan = await db.selectFrom('plans').selectAll().where('id', '=', 'pro').executeTakeFirstOrThrow();
  t.equal(plan.amount, 999_999_999, 'bigint read back as an exact integer');
  await t.rejects(
    db
      .insertInto('plans')
      .values({
        id: 'Bad Id',
        name: 'x',
        description: '',
        amount: 1,
        currency: 'USD',
        period: 'P1M',
        role: 'r',
        active: true,
      })
      .execute(),
    'plan ids are slugs',
  );
  await t.rejects(
    db
      .insertInto('plans')
      .values({
        id: 'zero',
        name: 'x',
        description: '',
        amount: 0,
        currency: 'USD',
        period: 'P1M',
        role: 'r',
        active: true,
      })
      .execute(),
    'amounts are positive',
  );
  const subId = '00000000-0000-4000-8000-000000000001';
  await db
    .insertInto('subscriptions')
    .values({
      id: subId,
      user_id: 'u1',
      plan_id: 'pro',
      plan_name: 'Pro',
      role: 'premium',
      amount: 100,
      currency: 'USD',
      period: 'P1M',
      status: 'pending',
    })
    .execute();
  await db
    .insertInto('payments')
    .values({
      id: '00000000-0000-4000-8000-000000000002',
      subscription_id: subId,
      user_id: 'u1',
      kind: 'initial',
      amount: 100,
      currency: 'USD',
      status: 'created',
      period_index: 0,
    })
    .execute();
  await t.rejects(db.deleteFrom('payments').execute(), /never deleted/);
  await t.rejects(
    db.updateTable('payments').set({ refunded_amount: 101 }).execute(),
    'cannot refund more than was paid',
  );
});

t.test('every migration after the initial one can be taken back and applied again', async (t) => {
  const tdb = await createTestDatabase();
  t.teardown(() => tdb.drop());
  const { Migrator } = await import('kysely');
  const { migrations } = await import('../src/migrations/index.js');
  const migrator = new Migrator({ db: tdb.db, provider: { getMigrations: async () => migrations } });
  const down = await migrator.migrateTo('20261126T1400_initial');
  t.error(down.error);
  t.same(
    down.results?.map((r) => [r.direction, r.status]),
    Object.keys(migrations)
      .slice(1)
      .reverse()
      .map(() => ['Down', 'Success']),
    'each later migration taken back',
  );
  const up = await migrateToLatest(tdb.db);
  t.same(
    up.map((r) => r.status),
    Object.keys(migrations)
      .slice(1)
      .map(() => 'Success'),
    'and applied again',
  );
});

t.test("what the Auth service shows per user and role, taken from the outbox's last role change of each", async (t) => {
  const tdb = await createTestDatabase();
  t.teardown(() => tdb.drop());
  const { Migrator, sql } = await import('kysely');
  const { migrations } = await import('../src/migrations/index.js');
  const migrator = new Migrator({ db: tdb.db, provider: { getMigrations: async () => migrations } });
  t.error((await migrator.migrateTo('20261207T0300_retention_offer')).error);
  const change = (type: string, userId: string, role: string) =>
    sql`insert into outbox (id, exchange, routing_key, type, envelope, headers)
      values (gen_random_uuid(), 'billing.events', ${type}, ${type},
        ${JSON.stringify({ data: { userId, role, source: 'subscription', reason: 'x' } })}::jsonb, '{}'::jsonb)`.execute(
      tdb.db,
    );
  await change('role.granted', 'u1', 'premium');
  await change('role.revoked', 'u1', 'premium');
  await change('role.granted', 'u1', 'premium');
  await change('role.granted', 'u2', 'premium');
  await change('role.revoked', 'u2', 'premium');
  await change('subscription.activated', 'u3', 'premium');
  t.error((await migrator.migrateTo('20261207T0400_auth_role_states')).error);
  const rows = await sql<{ user_id: string; role: string; held: boolean }>`select user_id, role, held
    from auth_role_states order by user_id`.execute(tdb.db);
  t.same(
    rows.rows.map((r) => [r.user_id, r.role, r.held]),
    [
      ['u1', 'premium', true],
      ['u2', 'premium', false],
    ],
    'the last change of each pair; none for a pair with no role change',
  );
  await t.rejects(sql`delete from auth_role_states`.execute(tdb.db), 'never deleted');
});
