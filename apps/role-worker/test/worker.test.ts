import type { Transaction } from 'kysely';
import t from 'tap';
import { AuthClient } from '@billing/auth-client';
import { endGrantsByOperator, lockKey, startManualGrant } from '@billing/billing-core';
import type { Database } from '@billing/db';
import { createMigratedTestDb } from '@billing/db/testing';
import { createRuntime } from '@billing/runtime';
import { createTestVhost, freePort, spawnApp, waitFor, waitForHttp } from '@billing/testing';
import { buildWorker } from '../src/worker.js';

// docs/auth.md: role changes for one user and role, queued at the same instant from both sides
// (a grant starting, the same user's grants ending), converge on what the grants say, and
// `role.granted` / `role.revoked` go out once per change the Auth service saw, with two role-worker
// replicas taking the changes.
const USERS = Number(process.env['ROLE_RACE_USERS'] ?? 40);
const ROUNDS = Number(process.env['ROLE_RACE_ROUNDS'] ?? 4);
const TOKEN = 'role-test-service-token';

const [tdb, vhost, port] = await Promise.all([createMigratedTestDb(), createTestVhost(), freePort()]);
const authStandIn = spawnApp('tools/auth-stand-in/src/main.ts', {
  PORT: String(port),
  HOST: '127.0.0.1',
  JWT_SECRET: 'role-test-jwt-secret-0123456789abcdef',
  AUTH_SERVICE_TOKEN: TOKEN,
});
const authUrl = `http://127.0.0.1:${port}`;
await waitForHttp(`${authUrl}/_control/calls`);
// Two replicas, as docker-compose scales them: each its own process state, pool and channel.
const replicas = Array.from({ length: 2 }, (_, i) => {
  const rt = createRuntime(`role-worker`, { DATABASE_URL: tdb.url, AMQP_URL: vhost.url, LOG_LEVEL: 'error' });
  const worker = buildWorker({
    rt,
    auth: new AuthClient({ baseUrl: authUrl, serviceToken: TOKEN }),
    retryDelaysMs: [50, 100, 200],
  });
  return { rt, worker, name: `replica ${i + 1}` };
});
const rt = replicas[0]!.rt;
for (const r of replicas) {
  await r.rt.relay.start();
  await r.worker.start();
}
t.teardown(async () => {
  for (const r of replicas) {
    await r.worker.stop();
    await r.rt.close();
  }
  await authStandIn.stop();
  await tdb.drop();
  await vhost.drop();
});

const control = async (path: string, body?: unknown) => {
  const res = await fetch(`${authUrl}/_control${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  return res.json() as Promise<unknown>;
};

// As the portal does: under the user-and-role lock; billing-core queues the role change.
const change = (userId: string, fn: (trx: Transaction<Database>) => Promise<unknown>) =>
  rt.db.transaction().execute(async (trx) => {
    await lockKey(trx, `role:${userId}:premium`);
    await fn(trx);
  });
const count = async (table: 'outbox' | 'processed_messages') => {
  const r =
    table === 'outbox'
      ? await rt.db
          .selectFrom('outbox')
          .where('type', '=', 'role.change.requested')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      : await rt.db
          .selectFrom('processed_messages')
          .where('consumer', '=', 'role-worker')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow();
  return Number(r.n);
};

for (let round = 1; round <= ROUNDS; round++) {
  t.test(`round ${round}: ${USERS} users, a grant and an end released at once for each`, async (t) => {
    const users = Array.from({ length: USERS }, (_, i) => `role-race-${round}-${i}`);
    await control(
      '/users',
      users.map((id) => ({ id, roles: ['user'] })),
    );
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const races = users.flatMap((userId, i) => [
      gate.then(() =>
        change(userId, (trx) => startManualGrant(trx, { userId, role: 'premium', reason: 'race', grantedBy: 'test' })),
      ),
      gate.then(() => change(userId, (trx) => endGrantsByOperator(trx, userId, 'premium', 'race'))),
      // A third of them granted again once both are queued.
      ...(i % 3 === 0
        ? [
            gate
              .then(() => new Promise((r) => setTimeout(r, 5)))
              .then(() =>
                change(userId, (trx) =>
                  startManualGrant(trx, { userId, role: 'premium', reason: 'again', grantedBy: 'test' }),
                ),
              ),
          ]
        : []),
    ]);
    release();
    await Promise.all(races);
    const queued = await count('outbox');
    await waitFor(async () => (await count('processed_messages')) === queued, {
      what: 'every role change applied',
      timeoutMs: 60_000,
    });
    const calls = (await control('/calls')) as { method: string; path: string; status: number; changed: boolean }[];
    const outbox = await rt.db.selectFrom('outbox').select(['type', 'envelope']).execute();
    let held = 0;
    for (const userId of users) {
      const live = await rt.db
        .selectFrom('role_grants')
        .select('id')
        .where('user_id', '=', userId)
        .where('ended_at', 'is', null)
        .execute();
      const unsettled = await rt.db
        .selectFrom('role_grants')
        .select('id')
        .where('user_id', '=', userId)
        .where('ended_at', 'is not', null)
        .where('settled_at', 'is', null)
        .execute();
      const roles = ((await control(`/users/${userId}`)) as { roles: string[] }).roles;
      const holds = roles.includes('premium');
      if (holds) held++;
      t.equal(holds, live.length > 0, `${userId}: the Auth service agrees with the grants (${live.length} live)`);
      t.equal(unsettled.length, 0, `${userId}: every ended grant applied`);
      const path = `/api/v1/users/${userId}/roles`;
      // The changes the Auth service saw: a grant of a role the user held changes nothing.
      const grants = calls.filter((c) => c.method === 'POST' && c.path === path && c.changed).length;
      const revokes = calls.filter((c) => c.method === 'DELETE' && c.path === `${path}/premium` && c.changed).length;
      // docs/auth.md, one Auth call per change: the roles are read only by the pair's first change
      // (its grant is an operator's: nothing says whether the user had the role), never after.
      t.ok(
        calls.filter((c) => c.method === 'GET' && c.path === path).length <= 1,
        `${userId}: roles read once at most`,
      );
      const notes = (type: string) =>
        outbox.filter(
          (o) => o.type === type && (o.envelope as unknown as { data: { userId: string } }).data.userId === userId,
        ).length;
      t.same(
        [notes('role.granted'), notes('role.revoked')],
        [grants, revokes],
        `${userId}: role.granted and role.revoked once per change made at the Auth service`,
      );
      t.equal(grants - revokes, holds ? 1 : 0, `${userId}: changes alternate`);
    }
    t.comment(`${held} of ${USERS} hold the role at the end`);
  });
}
