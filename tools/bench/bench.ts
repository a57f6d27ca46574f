// `npm run bench`: the hot paths of the compiled apps (npm run build) next to hand-written
// baselines doing the same work against the same stand-ins, measured in the same run. Each figure
// is the median of --runs runs with the spread (min–max); a run whose load generator saw an error
// or a non-2xx answer is refused, not reported. Not a test.
//   npx tsx tools/bench/bench.ts [--duration 10] [--runs 3] [--connections 50]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import autocannon from 'autocannon';
import { sql } from 'kysely';
import { ProviderEventReceived } from '@billing/contracts';
import { makeEnvelope, publishProperties } from '@billing/messaging';
import { signJwt } from '@billing/auth-stand-in';
import { createMigratedTestDb } from '@billing/db/testing';
import { importCatalog } from '@billing/db';
import { createTestVhost, freePort, waitForHttp } from '@billing/testing';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const duration = arg('duration', 10);
const runs = arg('runs', 3);
const connections = arg('connections', 50);
process.env['DATABASE_URL'] ??= 'postgres://postgres@127.0.0.1:5432/postgres';
process.env['AMQP_URL'] ??= 'amqp://guest:guest@127.0.0.1:5672';
const root = path.resolve(import.meta.dirname, '../..');

const built = spawnSync(process.execPath, ['tools/build/build.mjs'], { cwd: root, encoding: 'utf8' });
if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stderr}`);

const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
await importCatalog(tdb.db, [
  {
    id: 'pro-monthly',
    name: 'Pro',
    description: '',
    amount: 999,
    currency: 'USD',
    period: 'P1M',
    role: 'premium',
    active: true,
  },
]);
const children: ChildProcess[] = [];
/** The apps' heap bounds, as docker-compose.yml sets them (BENCH_NODE_OPTIONS overrides, for experiments). */
const APP_NODE_OPTIONS = /NODE_OPTIONS: \$\{APP_NODE_OPTIONS:-(.+)\}/.exec(
  readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'),
)![1]!;
/** Starts a compiled entry point (or, for the baseline, a TypeScript file through tsx) and waits until it answers. */
/** `probe`: a path that answers 200 once the process is up, or null to wait for "ready" on its stdout. */
async function start(
  entry: string,
  env: Record<string, string>,
  probe: string | null,
): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  // BENCH_PROFILE=<app> writes a CPU profile of that app (node --cpu-prof) to /tmp/bench-profiles.
  const profile = process.env['BENCH_PROFILE'] && entry.includes(`/${process.env['BENCH_PROFILE']}/`);
  const args = entry.endsWith('.ts')
    ? ['--import', 'tsx', entry]
    : [...(profile ? ['--cpu-prof', '--cpu-prof-dir=/tmp/bench-profiles'] : []), '--enable-source-maps', entry];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env['PATH'],
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      // The apps run with the heap bounds production gives them (docker-compose.yml), stand-ins without.
      ...(/dist\/(billing-api|webhook-gateway|payment-worker|role-worker|scheduler|admin-portal)\//.test(entry)
        ? { NODE_OPTIONS: process.env['BENCH_NODE_OPTIONS'] ?? APP_NODE_OPTIONS }
        : {}),
    },
    stdio: ['ignore', probe ? 'ignore' : 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (b) => (err += b));
  children.push(child);
  const up = probe
    ? waitForHttp(`http://127.0.0.1:${port}${probe}`, 200, 30_000)
    : new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (b) => {
          out += b;
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
  await up.catch((e: Error) => {
    throw new Error(`${entry}: ${e.message}\n${err}`);
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid! };
}
/** The V8 heap in use, read from the app's own metrics (prom-client's default gauges). */
const heapMb = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const used = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m.exec(text)?.[1];
  return used ? Math.round(Number(used) / 1048576) : NaN;
};
const rssMb = (pid: number) => {
  const out = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return Math.round(Number(out) / 1024);
};

type Run = { rps: number; p50: number; p99: number };
type Result = { median: Run; min: number; max: number };
async function measure(
  what: string,
  opts: autocannon.Options,
  before?: (seconds: number) => Promise<void>,
): Promise<Result> {
  await before?.(2);
  await autocannon({ ...opts, duration: 2, connections });
  const all: Run[] = [];
  for (let i = 0; i < runs; i++) {
    await before?.(duration);
    const r = await autocannon({ ...opts, duration, connections });
    const bad = r.non2xx + r.errors + r.timeouts;
    if (bad > 0)
      throw new Error(
        `${what}: run ${i + 1} saw ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts: not reported`,
      );
    all.push({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 });
  }
  all.sort((a, b) => a.rps - b.rps);
  return { median: all[Math.floor(all.length / 2)]!, min: all[0]!.rps, max: all[all.length - 1]!.rps };
}

const secret = 'bench-jwt-secret-0123456789abcdef0123';
const stand = { PAYPAL_CLIENT_ID: 'bench', PAYPAL_CLIENT_SECRET: 'bench-secret', PAYPAL_WEBHOOK_ID: 'WH-B' };
const rows: string[] = [];
const memory: string[] = [];
try {
  const paypal = await start('dist/paypal-sandbox/main.js', stand, '/_control/calls');
  const auth = await start(
    'dist/auth-stand-in/main.js',
    { JWT_SECRET: secret, AUTH_SERVICE_TOKEN: 'bench-token' },
    '/_control/calls',
  );
  const now = Math.floor(Date.now() / 1000);
  // 10 checkouts a minute per user (docs/api.md): rotate over enough users that none is limited.
  const tokens = Array.from({ length: 40_000 }, (_, i) =>
    signJwt({ sub: `bench-user-${i}`, roles: ['user'], iat: now, exp: now + 3600 }, { alg: 'HS256', secret }),
  );
  let u = 0;
  const checkoutRequest = (url: string): autocannon.Options => ({
    url,
    method: 'POST',
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[u++ % tokens.length]}` },
          body: '{"planId":"pro-monthly"}',
        }),
      },
    ],
  });

  const baseline = await start(
    'tools/bench/baseline.ts',
    {
      DATABASE_URL: tdb.url,
      JWT_SECRET: secret,
      AUTH_SERVICE_URL: auth.url,
      AUTH_SERVICE_TOKEN: 'bench-token',
      PAYPAL_API_BASE: paypal.url,
      ...stand,
    },
    '/hello',
  );
  const hello = await measure('bare GET', { url: `${baseline.url}/hello` });
  let n = 0;
  const insert = await measure('bare POST', {
    url: `${baseline.url}/payment`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ userId: `u${n++}`, amount: 999 }) }) }],
  });
  const bareCheckout = await measure('bare checkout', checkoutRequest(`${baseline.url}/checkout`));

  // Webhook ingest: PayPal's PAYMENT.CAPTURE.COMPLETED (its published capture sample as the resource),
  // a fresh event id per delivery, each signed by the PayPal stand-in before the run (its control API),
  // so that every verify call is a real verdict on a new event and every insert a new row.
  const capture = (
    JSON.parse(
      readFileSync(path.join(root, 'tools/paypal-sandbox/test/fixtures/order-captured-with-vault.json'), 'utf8'),
    ) as { purchase_units: { payments: { captures: unknown[] } }[] }
  ).purchase_units[0]!.payments.captures[0];
  let deliveries: { body: string; headers: Record<string, string> }[] = [];
  let d = 0;
  let eventSeq = 0;
  const prepareEvents = async (seconds: number) => {
    const bodies = Array.from({ length: Math.ceil(seconds * 6_000) }, () =>
      JSON.stringify({
        id: `WH-BENCH${String(eventSeq++).padStart(10, '0')}-${Date.now()}`,
        event_version: '1.0',
        create_time: new Date().toISOString(),
        resource_type: 'capture',
        resource_version: '2.0',
        event_type: 'PAYMENT.CAPTURE.COMPLETED',
        summary: 'Payment completed for $ 100.0 USD',
        resource: capture,
      }),
    );
    const res = await fetch(`${paypal.url}/_control/webhooks/sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bodies }),
    });
    const { headers } = (await res.json()) as { headers: Record<string, string>[] };
    deliveries = bodies.map((body, i) => ({ body, headers: { 'content-type': 'application/json', ...headers[i]! } }));
    d = 0;
  };
  const webhookRequest = (url: string): autocannon.Options => ({
    url,
    method: 'POST',
    requests: [
      {
        setupRequest: (req) => {
          const next = deliveries[d++];
          if (!next) throw new Error('more webhook deliveries than were signed: raise the per-second estimate');
          return { ...req, headers: next.headers, body: next.body };
        },
      },
    ],
  });
  const bareWebhook = await measure('bare webhook', webhookRequest(`${baseline.url}/webhook`), prepareEvents);

  const api = await start(
    'dist/billing-api/main.js',
    {
      DATABASE_URL: tdb.url,
      AMQP_URL: vhost.url,
      JWT_SECRET: secret,
      AUTH_SERVICE_URL: auth.url,
      AUTH_SERVICE_TOKEN: 'bench-token',
      PAYPAL_API_BASE: paypal.url,
      ...stand,
      LOG_LEVEL: 'warn',
    },
    '/health/ready',
  );
  memory.push(`billing-api idle: ${rssMb(api.pid)} MB`);
  const plans = await measure('GET /v1/plans', { url: `${api.url}/v1/plans` });
  const checkout = await measure('POST /v1/subscriptions', checkoutRequest(`${api.url}/v1/subscriptions`));
  memory.push(`billing-api after load: ${rssMb(api.pid)} MB (heap in use ${await heapMb(api.url)} MB)`);

  const gateway = await start(
    'dist/webhook-gateway/main.js',
    {
      DATABASE_URL: tdb.url,
      AMQP_URL: vhost.url,
      PAYPAL_API_BASE: paypal.url,
      ...stand,
      LOG_LEVEL: 'warn',
      WEBHOOK_RATE_LIMIT_PER_MINUTE: '1000000',
    },
    '/health/ready',
  );
  memory.push(`webhook-gateway idle: ${rssMb(gateway.pid)} MB`);
  const ingest = await measure(
    'POST /webhooks/paypal',
    webhookRequest(`${gateway.url}/webhooks/paypal`),
    prepareEvents,
  );
  memory.push(`webhook-gateway after load: ${rssMb(gateway.pid)} MB (heap in use ${await heapMb(gateway.url)} MB)`);

  // payment-worker completions: PayPal's PAYMENT.CAPTURE.COMPLETED applied to approved payments (the
  // capture checked against the payment, the payment completed, the subscription activated, the
  // role grant and the notification queued), against a bare consumer doing one UPDATE and an ack.
  // Each run seeds WORKER_N approved payments with their stored events, publishes their messages
  // and times the queue until every payment is completed in the database.
  const WORKER_N = 3_000;
  const broker = await amqplib.connect(vhost.url);
  const pub = await broker.createConfirmChannel();
  const countDone = async (table: 'payments' | 'bench_completions', ids: string[]) =>
    Number(
      (
        await sql<{
          n: string;
        }>`select count(*) as n from ${sql.table(table)} where status = 'completed' and id = any(${ids}::uuid[])`.execute(
          tdb.db,
        )
      ).rows[0]!.n,
    );
  const timeUntil = async (done: () => Promise<boolean>) => {
    const started = Date.now();
    while (!(await done())) {
      if (Date.now() - started > 120_000) throw new Error('a worker run did not finish within 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - started;
  };
  const drainRuns = async (what: string, run: () => Promise<number>): Promise<Result> => {
    await run(); // warm-up
    const all: Run[] = [];
    for (let i = 0; i < runs; i++) {
      const ms = await run();
      all.push({ rps: (WORKER_N * 1000) / ms, p50: NaN, p99: NaN });
    }
    all.sort((a, b) => a.rps - b.rps);
    process.stderr.write(`${what}: ${all.map((r) => Math.round(r.rps)).join(', ')} per second\n`);
    return { median: all[Math.floor(all.length / 2)]!, min: all[0]!.rps, max: all[all.length - 1]!.rps };
  };
  const rawConsumer = await start(
    'tools/bench/baseline-consumer.ts',
    { DATABASE_URL: tdb.url, AMQP_URL: vhost.url },
    null,
  );
  void rawConsumer;
  const rawCompletions = await drainRuns('bare consumer', async () => {
    const ids = Array.from({ length: WORKER_N }, () => randomUUID());
    await sql`insert into bench_completions (id, status) select unnest(${ids}::uuid[]), 'approved'`.execute(tdb.db);
    for (const id of ids)
      pub.sendToQueue('bench.raw-completions', Buffer.from(JSON.stringify({ id })), { persistent: true });
    const published = pub.waitForConfirms();
    const ms = await timeUntil(async () => (await countDone('bench_completions', ids)) === WORKER_N);
    await published;
    return ms;
  });
  const worker = await start(
    'dist/payment-worker/main.js',
    { DATABASE_URL: tdb.url, AMQP_URL: vhost.url, PAYPAL_API_BASE: paypal.url, ...stand, LOG_LEVEL: 'warn' },
    '/health/ready',
  );
  memory.push(`payment-worker idle: ${rssMb(worker.pid)} MB`);
  const captureSample = capture as Record<string, unknown>;
  let seeded = 0;
  /** `n` approved first payments of pending subscriptions, as a buyer's approval leaves them. */
  const seedApproved = async (n: number, userPrefix: string) => {
    const rows = Array.from({ length: n }, () => {
      const i = seeded++;
      return {
        sub: randomUUID(),
        pay: randomUUID(),
        event: randomUUID(),
        order: `BENCHORDER${i}`,
        n: i,
        user: `${userPrefix}-${i}`,
      };
    });
    await sql`insert into subscriptions (id, user_id, plan_id, plan_name, role, amount, currency, period, status)
      select unnest(${rows.map((r) => r.sub)}::uuid[]), unnest(${rows.map((r) => r.user)}::text[]),
        'pro-monthly', 'Pro', 'premium', 999, 'USD', 'P1M', 'pending'`.execute(tdb.db);
    await sql`insert into payments (id, subscription_id, user_id, kind, amount, currency, status, period_index, provider_order_id)
      select unnest(${rows.map((r) => r.pay)}::uuid[]), unnest(${rows.map((r) => r.sub)}::uuid[]),
        unnest(${rows.map((r) => r.user)}::text[]), 'initial', 999, 'USD', 'approved', 0,
        unnest(${rows.map((r) => r.order)}::text[])`.execute(tdb.db);
    return rows;
  };
  /** PayPal's PAYMENT.CAPTURE.COMPLETED (its published capture as the resource) for one seeded payment. */
  const captureEvent = (r: { pay: string; order: string; n: number }) =>
    JSON.stringify({
      id: `WH-WORKER${r.n}`,
      event_version: '1.0',
      create_time: new Date().toISOString(),
      resource_type: 'capture',
      resource_version: '2.0',
      event_type: 'PAYMENT.CAPTURE.COMPLETED',
      summary: 'Payment completed for $ 9.99 USD',
      resource: {
        ...captureSample,
        id: `BENCHCAPTURE${r.n}`,
        amount: { currency_code: 'USD', value: '9.99' },
        custom_id: r.pay,
        supplementary_data: { related_ids: { order_id: r.order } },
      },
    });
  const completions = await drainRuns('payment-worker', async () => {
    const rows = await seedApproved(WORKER_N, 'bench-buyer');
    const payloads = rows.map(captureEvent);
    await sql`insert into provider_events (id, provider, provider_event_id, event_type, resource_type, resource_id, payload)
      select unnest(${rows.map((r) => r.event)}::uuid[]), 'paypal', unnest(${rows.map((r) => `WH-WORKER${r.n}`)}::text[]),
        'PAYMENT.CAPTURE.COMPLETED', 'capture', unnest(${rows.map((r) => `BENCHCAPTURE${r.n}`)}::text[]),
        unnest(${payloads}::jsonb[])`.execute(tdb.db);
    for (const r of rows) {
      const envelope = makeEnvelope(ProviderEventReceived, {
        providerEventRowId: r.event,
        provider: 'paypal',
        eventType: 'PAYMENT.CAPTURE.COMPLETED',
      });
      pub.publish(
        ProviderEventReceived.exchange,
        ProviderEventReceived.routingKey,
        Buffer.from(JSON.stringify(envelope)),
        publishProperties(envelope),
      );
    }
    const published = pub.waitForConfirms();
    const ids = rows.map((r) => r.pay);
    const ms = await timeUntil(async () => (await countDone('payments', ids)) === WORKER_N);
    await published;
    return ms;
  });
  memory.push(`payment-worker after load: ${rssMb(worker.pid)} MB (heap in use ${await heapMb(worker.url)} MB)`);

  // Webhook → role: PayPal delivering PAYMENT.CAPTURE.COMPLETED at a steady rate to the gateway, the
  // payment-worker completing, the role-worker granting at the Auth stand-in; the latency of each
  // is the time from its delivery to the grant call the Auth stand-in received.
  const RATE = 200;
  const SECONDS = 10;
  const roleWorker = await start(
    'dist/role-worker/main.js',
    {
      DATABASE_URL: tdb.url,
      AMQP_URL: vhost.url,
      AUTH_SERVICE_URL: auth.url,
      AUTH_SERVICE_TOKEN: 'bench-token',
      LOG_LEVEL: 'warn',
    },
    '/health/ready',
  );
  const roleRows = await seedApproved(RATE * SECONDS, 'bench-role');
  const roleBodies = roleRows.map(captureEvent);
  const signedRole = (await (
    await fetch(`${paypal.url}/_control/webhooks/sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bodies: roleBodies }),
    })
  ).json()) as { headers: Record<string, string>[] };
  const sentAt = new Map<string, number>();
  const deliveries2: Promise<void>[] = [];
  const rateStart = Date.now();
  for (let i = 0; i < roleRows.length; i++) {
    const due = rateStart + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(roleRows[i]!.user, Date.now());
    deliveries2.push(
      fetch(`${gateway.url}/webhooks/paypal`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signedRole.headers[i]! },
        body: roleBodies[i]!,
      }).then(async (res) => {
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`webhook → role: a delivery answered ${res.status}`);
      }),
    );
  }
  const sendSeconds = (Date.now() - rateStart) / 1000;
  await Promise.all(deliveries2);
  const grants = new Map<string, number>();
  const drainStart = Date.now();
  while (grants.size < roleRows.length) {
    if (Date.now() - drainStart > 300_000)
      throw new Error(`webhook → role: ${grants.size} of ${roleRows.length} granted after 300 s`);
    await new Promise((r) => setTimeout(r, 500));
    const calls = (await (await fetch(`${auth.url}/_control/calls`)).json()) as {
      at: string;
      method: string;
      path: string;
    }[];
    for (const c of calls) {
      const user = /\/users\/(bench-role-\d+)\/roles/.exec(decodeURIComponent(c.path))?.[1];
      if (user && c.method !== 'GET' && !grants.has(user)) grants.set(user, Date.parse(c.at));
    }
  }
  const latencies = [...grants].map(([user, at]) => at - sentAt.get(user)!).sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  const lastGrant = Math.max(...grants.values());
  const roleLine = `| webhook → role granted at the Auth stand-in, ${RATE} events/s for ${SECONDS} s (sent in ${sendSeconds.toFixed(1)} s) | ${Math.round((roleRows.length * 1000) / (lastGrant - rateStart))} granted/s overall | ${pct(0.5)} / ${pct(0.99)} | – | – | p50 ≤ 15 ms, p99 ≤ 50 ms |`;
  memory.push(`role-worker after load: ${rssMb(roleWorker.pid)} MB (heap in use ${await heapMb(roleWorker.url)} MB)`);

  // Renewals: RENEWALS active subscriptions falling due at once, three scheduler replicas and two
  // payment-workers charging their saved wallets at the PayPal stand-in; timed from the moment they
  // fall due until every renewal payment is completed; captures counted per subscription.
  const RENEWALS = Number(process.env['BENCH_RENEWALS'] ?? 10_000);
  await sql`insert into plans (id, name, description, amount, currency, period, role, active)
    values ('bench-hourly', 'Hourly', '', 120, 'USD', 'PT1H', 'hourly', true) on conflict do nothing`.execute(tdb.db);
  const vaults = Array.from({ length: RENEWALS }, (_, i) => `bench-vault-${i}`);
  await fetch(`${paypal.url}/_control/vault`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ids: vaults }),
  });
  const schedulerEnv = {
    DATABASE_URL: tdb.url,
    AMQP_URL: vhost.url,
    LOG_LEVEL: 'warn',
    SCHEDULER_INTERVAL_MS: '500',
    RENEWAL_LEAD_MS: '5000',
  };
  const secondWorker = await start(
    'dist/payment-worker/main.js',
    { DATABASE_URL: tdb.url, AMQP_URL: vhost.url, PAYPAL_API_BASE: paypal.url, ...stand, LOG_LEVEL: 'warn' },
    '/health/ready',
  );
  void secondWorker;
  const dueAt = Date.now() + 8_000; // the period ends 8 s from now, due RENEWAL_LEAD_MS before
  const renewalSubs = vaults.map((vault, i) => ({ id: randomUUID(), user: `bench-renewal-${i}`, vault }));
  await sql`insert into subscriptions (id, user_id, plan_id, plan_name, role, amount, currency, period, status, anchor_at, paid_through, vault_id)
    select unnest(${renewalSubs.map((r) => r.id)}::uuid[]), unnest(${renewalSubs.map((r) => r.user)}::text[]),
      'bench-hourly', 'Hourly', 'hourly', 120, 'USD', 'PT1H', 'active',
      ${new Date(dueAt - 3_600_000)}::timestamptz, ${new Date(dueAt)}::timestamptz, unnest(${vaults}::text[])`.execute(
    tdb.db,
  );
  const schedulers = await Promise.all(
    [0, 1, 2].map(() => start('dist/scheduler/main.js', schedulerEnv, '/health/ready')),
  );
  const fellDue = dueAt - 5_000;
  const renewed = async () =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from payments where kind = 'renewal' and status = 'completed'
          and subscription_id = any(${renewalSubs.map((r) => r.id)}::uuid[])`.execute(tdb.db)
      ).rows[0]!.n,
    );
  while ((await renewed()) < RENEWALS) {
    if (Date.now() - fellDue > 600_000) throw new Error(`renewals: not all ${RENEWALS} completed within 10 minutes`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const renewalSeconds = (Date.now() - Math.max(fellDue, 0)) / 1000;
  const captures = (await (await fetch(`${paypal.url}/_control/captures`)).json()) as {
    customId?: string;
    vaultId?: string;
  }[];
  const renewalPayments = await sql<{ id: string; subscription_id: string }>`select id, subscription_id from payments
    where kind = 'renewal' and subscription_id = any(${renewalSubs.map((r) => r.id)}::uuid[])`.execute(tdb.db);
  const subOfPayment = new Map(renewalPayments.rows.map((p) => [p.id, p.subscription_id]));
  const perSub = new Map<string, number>();
  for (const c of captures) {
    const sub = c.customId ? subOfPayment.get(c.customId) : undefined;
    if (sub) perSub.set(sub, (perSub.get(sub) ?? 0) + 1);
  }
  const twice = [...perSub.values()].filter((n) => n > 1).length;
  const renewalLine = `| renewals: ${RENEWALS} due at once, 3 scheduler replicas + 2 payment-workers, charged at the stand-in | ${Math.round(RENEWALS / renewalSeconds)} renewals/s; all in ${renewalSeconds.toFixed(1)} s; ${perSub.size} captured, ${twice} twice | – | – | – | ≤ 30 s, none twice |`;
  memory.push(
    `scheduler after load: ${(await Promise.all(schedulers.map((x) => rssMb(x.pid)))).join(' / ')} MB`,
    `payment-worker after renewals: ${rssMb(worker.pid)} MB`,
  );
  await broker.close();

  const fmt = (r: Result) => `${Math.round(r.median.rps)} (${Math.round(r.min)}–${Math.round(r.max)})`;
  const row = (name: string, r: Result, base: Result | null, goal: string) =>
    `| ${name} | ${fmt(r)} | ${Number.isNaN(r.median.p99) ? '–' : `${r.median.p50} / ${r.median.p99}`} | ${base ? `${((100 * r.median.rps) / base.median.rps).toFixed(1)}%` : '–'} | ${base && !Number.isNaN(r.median.p99) ? `${(r.median.p99 / Math.max(1, base.median.p99)).toFixed(1)}×` : '–'} | ${goal} |`;
  rows.push(row('(a) bare Fastify GET', hello, null, 'baseline'));
  rows.push(row("(d') bare POST: payment + outbox in one transaction", insert, null, 'baseline'));
  rows.push(row('bare checkout: JWT, Auth call, payment + outbox, PayPal order', bareCheckout, null, 'baseline'));
  rows.push(row('bare webhook: verify call, event + outbox', bareWebhook, null, 'baseline'));
  rows.push(row('billing-api `GET /v1/plans` vs (a)', plans, hello, '≥ 50%'));
  rows.push(row('billing-api `POST /v1/subscriptions` vs bare checkout', checkout, bareCheckout, '≥ 60%, p99 ≤ 2×'));
  rows.push(row('webhook-gateway `POST /webhooks/paypal` vs bare webhook', ingest, bareWebhook, '≥ 80%, p99 ≤ 60 ms'));
  rows.push(row('bare consumer: consume, one UPDATE, ack (messages/s)', rawCompletions, null, 'baseline'));
  rows.push(
    row('payment-worker captures completed (messages/s) vs bare consumer', completions, rawCompletions, '≥ 50%'),
  );
  rows.push(roleLine);
  rows.push(renewalLine);
  process.stdout.write(
    `\n${connections} connections, ${duration} s runs, median of ${runs} (min–max req/s); every run 2xx only\n\n` +
      `| path | req/s | p50 / p99 ms | vs baseline | p99 vs | goal |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n\n${memory.join('; ')}\n`,
  );
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  await tdb.drop();
  await vhost.drop();
}
