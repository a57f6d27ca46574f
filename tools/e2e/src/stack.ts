import amqplib from 'amqplib';
import { createMigratedTestDb, type MigratedTestDb } from '@billing/db/testing';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  APP_ROLE_SUFFIX,
  appRole,
  appUrl,
  importCatalog,
  migrateWithRoles,
  type AppName as DbAppName,
  type DbRoles,
} from '@billing/db';
import { retryQueueName, WORK_QUEUES } from '@billing/messaging';
import {
  createTestVhost,
  freePort,
  spawnApp,
  startTcpProxy,
  viaProxy,
  waitFor,
  waitForHttp,
  type Spawned,
  type TcpProxy,
  type TestVhost,
} from '@billing/testing';

export const APPS = [
  'billing-api',
  'webhook-gateway',
  'admin-portal',
  'payment-worker',
  'role-worker',
  'scheduler',
] as const;
export type AppName = (typeof APPS)[number];

export interface Stack {
  tdb: MigratedTestDb;
  vhost: TestVhost;
  urls: Record<AppName | 'paypal' | 'auth', string>;
  /** Every app reaches RabbitMQ through this proxy, so a test can make the broker vanish. */
  brokerProxy: TcpProxy;
  processes: Map<string, Spawned>;
  /** Starts one more replica of an app (a scheduler or a worker) on a free port. */
  replica(app: AppName): Promise<Spawned>;
  /** The base URL a replica listens on. */
  urlOf(replica: Spawned): string;
  serviceToken: string;
  jwtSecret: string;
  /** A JWT from the Auth stand-in for a user it knows (created if new). */
  tokenFor(userId: string, roles?: string[]): Promise<string>;
  paypal(path: string, body?: unknown): Promise<any>;
  auth(path: string, body?: unknown): Promise<any>;
  /**
   * Messages on notifications.billing so far (read without consuming them for good). It first waits
   * until every outbox row committed before the call is published (confirmed by the broker), so a
   * notification of a state the test already saw in the database is on the queue.
   */
  notifications(): Promise<{ id: string; type: string; data: Record<string, unknown> }[]>;
  /**
   * Waits until nothing moves: the outbox drained, every work and retry queue empty, and no
   * message processed nor PayPal or Auth call made for `stableMs`. Use it, not a sleep, to show
   * that nothing more happens.
   */
  quiet(opts?: { stableMs?: number; timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

const PLANS = [
  {
    id: 'pro-monthly',
    name: 'Pro (monthly)',
    description: 'Pro',
    amount: 999,
    currency: 'USD',
    period: 'P1M',
    role: 'premium',
    active: true,
  },
  {
    id: 'team-monthly',
    name: 'Team (monthly)',
    description: 'Team',
    amount: 2900,
    currency: 'EUR',
    period: 'P1M',
    role: 'team',
    active: true,
  },
  {
    id: 'yen-monthly',
    name: 'Yen plan',
    description: 'JPY',
    amount: 1500,
    currency: 'JPY',
    period: 'P1M',
    role: 'yen',
    active: true,
  },
];

/**
 * The whole system as real processes: both stand-ins and the six apps, each a child process
 * on a free port, started one at a time, on a fresh database and RabbitMQ vhost.
 */
export async function startStack(
  extraEnv: Partial<Record<string, string>> = {},
  opts: {
    echo?: boolean;
    plans?: ((typeof PLANS)[number] & { trialPeriod?: string | null; maxPause?: string | null })[];
    /** A broker of the test's own (a cluster): the apps get `urls`, the stack's own checks use `adminUrl`. */
    amqp?: { urls: string; adminUrl: string };
    /** PayPal's return and cancel URLs land on billing-api's own billing page (as by default), not a shop. */
    homeIsBillingPage?: boolean;
    /**
     * A database of the test's own (on a Postgres cluster it started; its URL may name several
     * hosts): migrated here, left to the test to throw away.
     */
    database?: MigratedTestDb;
  } = {},
): Promise<Stack> {
  const ownBroker = opts.amqp;
  const [tdb, vhost] = await Promise.all([
    opts.database ? Promise.resolve(opts.database) : createMigratedTestDb({ migrate: false }),
    ownBroker
      ? Promise.resolve<TestVhost>({ url: ownBroker.adminUrl, vhost: '/', drop: async () => undefined })
      : createTestVhost(),
  ]);
  // As in production: migrated as an owner role, the apps connected as a role that may only read,
  // insert and update rows (docs/data.md). One pair of roles per stack, dropped with it.
  const suffix = randomBytes(4).toString('hex');
  const roles: DbRoles = { owner: `e2e_owner_${suffix}`, app: `e2e_app_${suffix}` };
  await migrateWithRoles(tdb.url, roles);
  await importCatalog(tdb.db, [...PLANS, ...(opts.plans ?? [])]);
  const mq = new URL(vhost.url);
  const brokerProxy = await startTcpProxy({ host: mq.hostname, port: Number(mq.port || 5672) });
  const ports = Object.fromEntries(
    await Promise.all([...APPS, 'paypal', 'auth'].map(async (n) => [n, await freePort()])),
  ) as Record<AppName | 'paypal' | 'auth', number>;
  const urls = Object.fromEntries(Object.entries(ports).map(([n, p]) => [n, `http://127.0.0.1:${p}`])) as Stack['urls'];
  const serviceToken = 'e2e-service-token-7c1d';
  const jwtSecret = 'e2e-jwt-secret-5b9e2f-0123456789abcdef';
  // Each app connects as its own role, with only the grants it uses (docs/data.md).
  const dbUrlOf = (app: AppName) => ({ DATABASE_URL: appUrl(tdb.url, roles, app) });
  const common = {
    AMQP_URL: ownBroker ? ownBroker.urls : viaProxy(vhost.url, brokerProxy),
    LOG_LEVEL: process.env['E2E_LOG_LEVEL'] ?? 'warn',
    JWT_SECRET: jwtSecret,
    AUTH_SERVICE_URL: urls.auth,
    AUTH_SERVICE_TOKEN: serviceToken,
    PAYPAL_API_BASE: urls.paypal,
    PAYPAL_CLIENT_ID: 'e2e-client',
    PAYPAL_CLIENT_SECRET: 'e2e-client-secret-91aa',
    PAYPAL_WEBHOOK_ID: 'WH-E2E',
    PAYPAL_TIMEOUT_MS: '3000',
    PUBLIC_BASE_URL: urls['billing-api'],
    APP_HOME_URL: opts.homeIsBillingPage ? `${urls['billing-api']}/billing` : 'http://shop.example/home',
    SCHEDULER_INTERVAL_MS: '1000',
    // Five connections an app, not ten: three stacks run side by side in npm test with the other
    // projects' tests on one Postgres of 100 connections, and with ten 102 sessions were seen.
    DB_POOL_SIZE: '5',
    RECOVERY_LINK_SECRET: 'e2e-recovery-link-secret-4d8a-0123456789',
    ...extraEnv,
  };
  const processes = new Map<string, Spawned>();
  const start = async (name: string, entry: string, env: Record<string, string | undefined>, port: number) => {
    const p = spawnApp(entry, { ...common, ...env, PORT: String(port) }, { echo: opts.echo ?? false });
    processes.set(name, p);
    await waitForHttp(
      `http://127.0.0.1:${port}${name === 'paypal' || name === 'auth' ? '/_control/calls' : '/health/ready'}`,
      200,
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${name} did not start: ${err.message}\n${p.output()}`);
    });
  };
  const stands = start(
    'paypal',
    'tools/paypal-sandbox/src/main.ts',
    {
      WEBHOOK_URL: `${urls['webhook-gateway']}/webhooks/paypal`,
      PUBLIC_URL: urls.paypal,
      WEBHOOK_RETRY_BASE_MS: '200',
      PAYPAL_CLIENT_ID: common.PAYPAL_CLIENT_ID,
      PAYPAL_CLIENT_SECRET: common.PAYPAL_CLIENT_SECRET,
      PAYPAL_WEBHOOK_ID: common.PAYPAL_WEBHOOK_ID,
      HOST: '127.0.0.1',
    },
    ports.paypal,
  ).then(() => start('auth', 'tools/auth-stand-in/src/main.ts', { HOST: '127.0.0.1' }, ports.auth));
  // Side by side: each app spends most of its second of starting on loading its modules and
  // connecting, not on what another app does (on an idle machine 7.1 s one at a time). None calls
  // the stand-ins while it starts. A slow start on a loaded machine has 60 s (start's timeout).
  const settled = await Promise.allSettled([
    stands,
    ...APPS.map((app) => start(app, `apps/${app}/src/main.ts`, dbUrlOf(app), ports[app])),
  ]);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const p of processes.values()) await p.stop('SIGKILL');
    throw failed.reason;
  }

  // A file that failed prints what its stack's processes logged (warnings and errors at the
  // default E2E_LOG_LEVEL): a wait that timed out then shows where the work stopped. Only under
  // tap (TAP=1 in its test processes): imported elsewhere (the bench's overload row), tap's root
  // test would end the process after its 30 s timeout.
  const tap = process.env['TAP'] === '1' ? (await import('tap')).default : undefined;
  tap?.teardown(() => {
    if (tap.passing()) return;
    for (const [name, p] of processes) {
      const lines = p
        .output()
        .split('\n')
        .filter((l) => l.trim())
        .slice(-40);
      if (lines.length) process.stderr.write(`\n--- ${name}, its last ${lines.length} lines:\n${lines.join('\n')}\n`);
    }
  });
  const json = async (base: string, path: string, body?: unknown) => {
    const res = await fetch(
      `${base}${path}`,
      body === undefined
        ? {}
        : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  };
  const replicas: Spawned[] = [];
  const replicaUrls = new Map<Spawned, string>();
  const known = new Set<string>();
  const conn = await amqplib.connect(vhost.url);
  const ch = await conn.createChannel();
  /** The messages on notifications.billing so far, read without consuming them for good (`notifications`). */
  async function readNotifications() {
    const pending = () =>
      tdb.db
        .selectFrom('outbox')
        .select('seq')
        .where('published_at', 'is', null)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
    const last = await pending();
    if (last)
      await waitFor(
        async () =>
          !(await tdb.db
            .selectFrom('outbox')
            .select('id')
            .where('published_at', 'is', null)
            .where('seq', '<=', last.seq)
            .limit(1)
            .executeTakeFirst()),
        { what: 'the outbox rows committed so far published', timeoutMs: 20_000 },
      );
    const out: { id: string; type: string; data: Record<string, unknown> }[] = [];
    const seen: amqplib.GetMessage[] = [];
    for (;;) {
      const m = await ch.get('notifications.billing', { noAck: false });
      if (!m) break;
      seen.push(m);
      const env = JSON.parse(m.content.toString());
      out.push({ id: env.id, type: env.type, data: env.data });
    }
    ch.nackAll(true);
    return out;
  }
  // One read at a time: two readers of the queue would each hide what the other holds unacked.
  let reading: Promise<unknown> = Promise.resolve();

  return {
    tdb,
    vhost,
    urls,
    brokerProxy,
    processes,
    serviceToken,
    jwtSecret,
    async tokenFor(userId, roles = ['user']) {
      if (!known.has(userId)) {
        const existing = await fetch(`${urls.auth}/_control/users/${encodeURIComponent(userId)}`);
        if (existing.status === 404)
          await json(urls.auth, '/_control/users', { id: userId, login: userId, password: `${userId}-pw`, roles });
        known.add(userId);
      }
      return (await json(urls.auth, '/_control/token', { sub: userId, roles })).access_token as string;
    },
    async replica(app) {
      const port = await freePort();
      const name = `${app}#${replicas.length + 2}`;
      await start(name, `apps/${app}/src/main.ts`, dbUrlOf(app), port);
      const p = processes.get(name)!;
      replicas.push(p);
      replicaUrls.set(p, `http://127.0.0.1:${port}`);
      return p;
    },
    urlOf: (replica) => replicaUrls.get(replica) ?? '',
    paypal: (path, body) => json(urls.paypal, path, body),
    auth: (path, body) => json(urls.auth, path, body),
    notifications() {
      const run = reading.then(() => readNotifications());
      reading = run.catch(() => undefined);
      return run;
    },
    async quiet({ stableMs = 800, timeoutMs = 30_000 } = {}) {
      const queues = Object.values(WORK_QUEUES).flatMap((w) => [
        w.queue,
        ...[...new Set<number>(w.retryDelaysMs)].map((d) => retryQueueName(w.queue, d)),
      ]);
      const probe = await conn.createChannel();
      const snapshot = async () => {
        const [outbox, processed, paypalCalls, authCalls, paypalHeld] = await Promise.all([
          tdb.db
            .selectFrom('outbox')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('published_at', 'is', null)
            .executeTakeFirstOrThrow(),
          tdb.db
            .selectFrom('processed_messages')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .executeTakeFirstOrThrow(),
          json(urls.paypal, '/_control/calls'),
          json(urls.auth, '/_control/calls'),
          // A call PayPal holds (a delay a test set, cleared since) is work in flight: its answer
          // is still to come and to be recorded, though nothing moves while it waits.
          json(urls.paypal, '/_control/held'),
        ]);
        let waiting = (paypalHeld as unknown[]).length;
        for (const q of queues) waiting += (await probe.checkQueue(q)).messageCount;
        return {
          backlog: Number(outbox.n) + waiting,
          moves: `${processed.n}/${paypalCalls.length}/${authCalls.length}`,
        };
      };
      const deadline = Date.now() + timeoutMs;
      try {
        let last = await snapshot();
        let stableSince = Date.now();
        for (;;) {
          await new Promise((r) => setTimeout(r, 100));
          const now = await snapshot();
          if (now.backlog > 0 || now.moves !== last.moves) stableSince = Date.now();
          last = now;
          if (Date.now() - stableSince >= stableMs) return;
          if (Date.now() > deadline)
            throw new Error(`the system did not go quiet within ${timeoutMs} ms (backlog ${now.backlog})`);
        }
      } finally {
        await probe.close().catch(() => undefined);
      }
    },
    async stop() {
      await conn.close().catch(() => undefined);
      for (const r of replicas) await r.stop('SIGKILL');
      for (const app of [...APPS].reverse()) await processes.get(app)?.stop();
      await Promise.all([processes.get('paypal')?.stop(), processes.get('auth')?.stop()]);
      await brokerProxy.close();
      if (!opts.database) {
        await tdb.drop();
        await dropRoles(tdb.url, roles);
      }
      await vhost.drop();
    },
  };
}

/** Approves an order at the stand-in over HTTP, as the buyer's browser would; returns the return URL PayPal redirects to. */
export async function approveInBrowser(approvalUrl: string): Promise<string> {
  const page = await fetch(approvalUrl);
  const html = await page.text();
  const token = /name="token" value="([^"]+)"/.exec(html)?.[1];
  if (!page.ok || !token || !html.includes('Approve'))
    throw new Error(`no approval page at ${approvalUrl}: ${page.status}`);
  const res = await fetch(new URL('/checkoutnow/approve', approvalUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${encodeURIComponent(token)}`,
    redirect: 'manual',
  });
  if (res.status !== 303) throw new Error(`approval answered ${res.status}`);
  return res.headers.get('location') ?? '';
}

async function dropRoles(url: string, roles: DbRoles): Promise<void> {
  const c = new pg.Client({ connectionString: url.replace(/\/[^/]+$/, '/postgres') });
  await c.connect();
  try {
    for (const r of [...Object.keys(APP_ROLE_SUFFIX).map((a) => appRole(roles, a as DbAppName)), roles.owner])
      await c.query(`drop role if exists ${r}`);
  } finally {
    await c.end();
  }
}

/** A checkout for `userId` through billing-api (201 expected): its subscription, payment and approval URL. */
export async function checkout(
  stack: Stack,
  userId: string,
): Promise<{ subscriptionId: string; paymentId: string; approvalUrl: string }> {
  const token = await stack.tokenFor(userId);
  const res = await fetch(`${stack.urls['billing-api']}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId: 'pro-monthly' }),
  });
  if (res.status !== 201) throw new Error(`checkout answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { subscriptionId: string; paymentId: string; approvalUrl: string };
}
