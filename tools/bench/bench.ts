// `npm run bench`: the hot paths of the compiled apps (npm run build) next to hand-written
// baselines doing the same work against the same stand-ins, measured in the same run, each
// baseline run interleaved with the project's run it is compared with. Each figure is the median
// of --runs runs with the spread (min–max); a run whose load generator saw an error or a non-2xx
// answer is refused, not reported. Each row is printed as soon as it is measured; the work queues
// are purged between phases, so no phase works off another's backlog. Not a test.
//   npx tsx tools/bench/bench.ts [--duration 10] [--runs 3] [--connections 50]
//   BENCH_ONLY=http,worker,role,renewals,overload (the phases to run; all by default)
//   BENCH_ROLE_RATE=200 (the webhook → role row's steady rate, events/s; the goal is stated at 200)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { sql } from 'kysely';
import { ProviderEventReceived, QUEUES } from '@billing/contracts';
import { makeEnvelope, publishProperties, WORK_QUEUES } from '@billing/messaging';
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
const only = new Set((process.env['BENCH_ONLY'] ?? 'http,worker,role,renewals,overload').split(','));
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
/** Each started process's name, by pid (for the CPU shares). */
const names = new Map<number, string>();
/** CPU seconds used so far by one process (utime + stime in /proc, in clock ticks of 1/100 s), 0 once gone. */
const cpuSeconds = (pid: number | 'self') => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
};
/** CPU seconds so far of our processes, the bench itself, Postgres's and RabbitMQ's (processes alive now). */
const cpuSnapshot = () => {
  const m = new Map<string, number>();
  const add = (k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  for (const [pid, name] of names) add(name, cpuSeconds(pid));
  add('bench (sender)', cpuSeconds('self'));
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === 'postgres') add('postgres', cpuSeconds(Number(pid)));
    if (comm === 'beam.smp') add('rabbitmq', cpuSeconds(Number(pid)));
  }
  return m;
};
/** Cores each process used between two snapshots `seconds` apart, busiest first. */
const cpuShares = (before: Map<string, number>, after: Map<string, number>, seconds: number) =>
  [...after]
    .map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / seconds] as const)
    .filter(([, cores]) => cores >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([k, cores]) => `${k} ${cores.toFixed(2)}`)
    .join(', ');
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
  names.set(child.pid!, entry.replace(/^dist\/|^tools\/bench\//, '').replace(/\/main\.js$|\.ts$/, ''));
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
/**
 * The V8 heap in use, with what the heap holds committed and the memory outside it (Buffers and
 * other external allocations), read from the app's own metrics (prom-client's default gauges).
 */
const heapFigures = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const mb = (name: string) => {
    const v = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)`, 'm').exec(text)?.[1];
    return v ? Math.round(Number(v) / 1048576) : NaN;
  };
  return `${mb('nodejs_heap_size_used_bytes')}; heap committed ${mb('nodejs_heap_size_total_bytes')}, external ${mb('nodejs_external_memory_bytes')}`;
};
const rssMb = (pid: number) => {
  const out = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return Math.round(Number(out) / 1024);
};

type Run = { rps: number; p50: number; p99: number };
type Result = { median: Run; min: number; max: number };
const summarise = (all: Run[]): Result => {
  all.sort((a, b) => a.rps - b.rps);
  return { median: all[Math.floor(all.length / 2)]!, min: all[0]!.rps, max: all[all.length - 1]!.rps };
};
async function once(what: string, opts: autocannon.Options, seconds: number): Promise<Run> {
  const r = await autocannon({ ...opts, duration: seconds, connections });
  const bad = r.non2xx + r.errors + r.timeouts;
  if (bad > 0)
    throw new Error(`${what}: a run saw ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts: not reported`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}
/**
 * A baseline and the project's path, measured alternately (baseline run, project run, and so on),
 * so that whatever else the machine does weighs on both alike. `before` prepares each run.
 */
async function pair(
  base: [string, autocannon.Options],
  proj: [string, autocannon.Options],
  before?: (seconds: number) => Promise<void>,
): Promise<[Result, Result]> {
  for (const [what, opts] of [base, proj]) {
    await before?.(2);
    await once(what, opts, 2); // warm-up
  }
  const b: Run[] = [];
  const p: Run[] = [];
  for (let i = 0; i < runs; i++) {
    await before?.(duration);
    b.push(await once(base[0], base[1], duration));
    await before?.(duration);
    p.push(await once(proj[0], proj[1], duration));
  }
  return [summarise(b), summarise(p)];
}
async function measure(what: string, opts: autocannon.Options): Promise<Result> {
  await once(what, opts, 2);
  const all: Run[] = [];
  for (let i = 0; i < runs; i++) all.push(await once(what, opts, duration));
  return summarise(all);
}
const fmt = (r: Result) => `${Math.round(r.median.rps)} (${Math.round(r.min)}–${Math.round(r.max)})`;
const row = (name: string, r: Result, base: Result | null, goal: string) =>
  `| ${name} | ${fmt(r)} | ${Number.isNaN(r.median.p99) ? '–' : `${r.median.p50} / ${r.median.p99}`} | ${base ? `${((100 * r.median.rps) / base.median.rps).toFixed(1)}%` : '–'} | ${base && !Number.isNaN(r.median.p99) ? `${(r.median.p99 / Math.max(1, base.median.p99)).toFixed(1)}×` : '–'} | ${goal} |`;
/** Prints a row at once: a later failure loses nothing measured before it. */
const emit = (line: string) => process.stdout.write(`${line}\n`);
const memory = (line: string) => process.stdout.write(`  memory: ${line}\n`);

const secret = 'bench-jwt-secret-0123456789abcdef0123';
const stand = { PAYPAL_CLIENT_ID: 'bench', PAYPAL_CLIENT_SECRET: 'bench-secret', PAYPAL_WEBHOOK_ID: 'WH-B' };
process.stdout.write(
  `${connections} connections, ${duration} s runs, median of ${runs} (min–max), baseline and project runs interleaved; every run 2xx only\n\n` +
    `| path | req/s | p50 / p99 ms | vs baseline | p99 vs | goal |\n|---|---|---|---|---|---|\n`,
);
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

  // The bench's users exist at the Auth stand-in, as a real product's buyers do (a checkout reads
  // their roles, and a grant for an unknown user is a 404, retried for a day).
  const register = async (ids: string[]) => {
    for (let i = 0; i < ids.length; i += 20_000) {
      const res = await fetch(`${auth.url}/_control/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ids.slice(i, i + 20_000).map((id) => ({ id, roles: ['user'] }))),
      });
      if (!res.ok) throw new Error(`registering users at the Auth stand-in: ${res.status}`);
    }
  };
  await register(Array.from({ length: tokens.length }, (_, i) => `bench-user-${i}`));
  const baseline = await start(
    'tools/bench/baseline.ts',
    {
      DATABASE_URL: tdb.url,
      AMQP_URL: vhost.url,
      JWT_SECRET: secret,
      AUTH_SERVICE_URL: auth.url,
      AUTH_SERVICE_TOKEN: 'bench-token',
      PAYPAL_API_BASE: paypal.url,
      ...stand,
    },
    '/hello',
  );
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
  memory(
    `billing-api idle ${rssMb(api.pid)} MB (heap in use ${await heapFigures(api.url)} MB); webhook-gateway idle ${rssMb(gateway.pid)} MB (heap in use ${await heapFigures(gateway.url)} MB)`,
  );
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
  const broker = await amqplib.connect(vhost.url);
  const pub = await broker.createConfirmChannel();
  /** Empties every work queue and the notifications queue: no phase works off another's backlog. */
  const purge = async () => {
    const ch = await broker.createChannel();
    for (const q of [...Object.values(WORK_QUEUES).map((w) => w.queue), QUEUES.notifications, 'bench.baseline-outbox'])
      await ch.purgeQueue(q).catch(() => undefined);
    await ch.close();
  };

  if (only.has('http')) {
    const [hello, plans] = await pair(
      ['bare GET', { url: `${baseline.url}/hello` }],
      ['GET /v1/plans', { url: `${api.url}/v1/plans` }],
    );
    emit(row('(a) bare Fastify GET', hello, null, 'baseline'));
    emit(row('billing-api `GET /v1/plans` vs (a)', plans, hello, '≥ 50%'));
    let n = 0;
    const insert = await measure('bare POST', {
      url: `${baseline.url}/payment`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ userId: `u${n++}`, amount: 999 }) }) }],
    });
    emit(row("(d') bare POST: payment + outbox in one transaction, published", insert, null, 'baseline'));
    await purge();
    const [bareCheckout, checkout] = await pair(
      ['bare checkout', checkoutRequest(`${baseline.url}/checkout`)],
      ['POST /v1/subscriptions', checkoutRequest(`${api.url}/v1/subscriptions`)],
      purge,
    );
    emit(
      row('bare checkout: JWT, Auth call, payment + outbox (published), PayPal order', bareCheckout, null, 'baseline'),
    );
    emit(row('billing-api `POST /v1/subscriptions` vs bare checkout', checkout, bareCheckout, '≥ 60%, p99 ≤ 2×'));
    memory(`billing-api after load ${rssMb(api.pid)} MB (heap in use ${await heapFigures(api.url)} MB)`);
    const [bareWebhook, ingest] = await pair(
      ['bare webhook', webhookRequest(`${baseline.url}/webhook`)],
      ['POST /webhooks/paypal', webhookRequest(`${gateway.url}/webhooks/paypal`)],
      async (seconds) => {
        await purge();
        await prepareEvents(seconds);
      },
    );
    emit(row('bare webhook: verify call, event + outbox (published)', bareWebhook, null, 'baseline'));
    emit(row('webhook-gateway `POST /webhooks/paypal` vs bare webhook', ingest, bareWebhook, '≥ 80%, p99 ≤ 60 ms'));
    memory(`webhook-gateway after load ${rssMb(gateway.pid)} MB (heap in use ${await heapFigures(gateway.url)} MB)`);
    // V8 gives back what a load left committed once the process has been idle a while (its memory
    // reducer starts about 8 s after the allocation rate falls): billing-api read again once the
    // webhook rows are done, about a minute after its own load.
    memory(`billing-api a minute after its load ${rssMb(api.pid)} MB (heap in use ${await heapFigures(api.url)} MB)`);
    await purge();
  }

  // payment-worker completions: PayPal's PAYMENT.CAPTURE.COMPLETED applied to approved payments (the
  // capture checked against the payment, the payment completed, the subscription activated, the
  // role grant and the notification queued), against a bare consumer doing one UPDATE and an ack.
  // Each run seeds WORKER_N approved payments with their stored events, publishes their messages
  // and times the queue until every payment is completed in the database.
  const WORKER_N = 3_000;
  // The done check polls every 50 ms for the ids not yet seen completed, so its cost shrinks as the
  // run goes and weighs the same on both sides (a count over all 3,000 ids cost Postgres ~5 ms a poll).
  const allDone = (table: 'payments' | 'bench_completions', ids: string[]) => {
    let left = ids;
    return async () => {
      const done = new Set(
        (
          await sql<{
            id: string;
          }>`select id from ${sql.table(table)} where status = 'completed' and id = any(${left}::uuid[])`.execute(
            tdb.db,
          )
        ).rows.map((r) => r.id),
      );
      left = left.filter((id) => !done.has(id));
      return left.length === 0;
    };
  };
  const timeUntil = async (done: () => Promise<boolean>) => {
    const started = Date.now();
    while (!(await done())) {
      if (Date.now() - started > 120_000) throw new Error('a worker run did not finish within 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - started;
  };
  const rawRun = async () => {
    const ids = Array.from({ length: WORKER_N }, () => randomUUID());
    await sql`insert into bench_completions (id, status) select unnest(${ids}::uuid[]), 'approved'`.execute(tdb.db);
    for (const id of ids)
      pub.sendToQueue('bench.raw-completions', Buffer.from(JSON.stringify({ id })), { persistent: true });
    const published = pub.waitForConfirms();
    const ms = await timeUntil(allDone('bench_completions', ids));
    await published;
    return ms;
  };
  const worker = await start(
    'dist/payment-worker/main.js',
    { DATABASE_URL: tdb.url, AMQP_URL: vhost.url, PAYPAL_API_BASE: paypal.url, ...stand, LOG_LEVEL: 'warn' },
    '/health/ready',
  );
  memory(`payment-worker idle ${rssMb(worker.pid)} MB`);
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
  const workerRun = async () => {
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
    const ms = await timeUntil(allDone('payments', ids));
    await published;
    return ms;
  };
  if (only.has('worker')) {
    await start('tools/bench/baseline-consumer.ts', { DATABASE_URL: tdb.url, AMQP_URL: vhost.url }, null);
    await rawRun(); // warm-up, both
    await workerRun();
    const raw: Run[] = [];
    const done: Run[] = [];
    const asRun = (ms: number): Run => ({ rps: (WORKER_N * 1000) / ms, p50: NaN, p99: NaN });
    for (let i = 0; i < runs; i++) {
      await purge();
      raw.push(asRun(await rawRun()));
      await purge();
      done.push(asRun(await workerRun()));
    }
    const rawCompletions = summarise(raw);
    const completions = summarise(done);
    emit(row('bare consumer: consume, one UPDATE, ack (messages/s)', rawCompletions, null, 'baseline'));
    emit(row('payment-worker captures completed (messages/s) vs bare consumer', completions, rawCompletions, '≥ 40%'));
    memory(`payment-worker after load ${rssMb(worker.pid)} MB (heap in use ${await heapFigures(worker.url)} MB)`);
    await purge();
  }

  // Webhook → role: PayPal delivering PAYMENT.CAPTURE.COMPLETED at a steady rate to the gateway, the
  // payment-worker completing, the role-worker granting at the Auth stand-in; the latency of each
  // is the time from its delivery to the grant call the Auth stand-in received.
  const RATE = Number(process.env['BENCH_ROLE_RATE'] ?? 200);
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
  if (only.has('role')) {
    await purge();
    // A warm-up of one second's events first (the role-worker has just started: its code not yet
    // optimised, its connections to the Auth service not yet open), then the measured ones.
    const WARMUP = RATE;
    const allRows = await seedApproved(WARMUP + RATE * SECONDS, 'bench-role');
    await register(allRows.map((r) => r.user));
    const allBodies = allRows.map(captureEvent);
    const signedAll = (await (
      await fetch(`${paypal.url}/_control/webhooks/sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ bodies: allBodies }),
      })
    ).json()) as { headers: Record<string, string>[] };
    // A bounded sender: at most MAX_IN_FLIGHT deliveries open at once (PayPal's own delivery is
    // not a flood of open connections); if the gateway falls behind, the send rate shows it.
    const MAX_IN_FLIGHT = 64;
    /** Sends rows [from, to) at RATE a second and waits until the Auth stand-in granted each (2xx). */
    const drive = async (from: number, to: number) => {
      const rows = allRows.slice(from, to);
      // undici's request on a pool of kept-alive sockets, not fetch: the sender shares the two cores
      // with what it measures, and fetch cost it about 0.25 of a core at 200 a second.
      const sender = new Pool(gateway.url, { connections: MAX_IN_FLIGHT });
      const sentAt = new Map<string, number>();
      const open = new Set<Promise<void>>();
      const rateStart = Date.now();
      for (let i = from; i < to; i++) {
        const due = rateStart + ((i - from) * 1000) / RATE;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        while (open.size >= MAX_IN_FLIGHT) await Promise.race(open);
        sentAt.set(allRows[i]!.user, Date.now());
        const d: Promise<void> = sender
          .request({
            path: '/webhooks/paypal',
            method: 'POST',
            headers: { 'content-type': 'application/json', ...signedAll.headers[i]! },
            body: allBodies[i]!,
          })
          .then(async (res) => {
            await res.body.dump();
            if (res.statusCode !== 200) throw new Error(`webhook → role: a delivery answered ${res.statusCode}`);
          })
          .finally(() => open.delete(d));
        open.add(d);
      }
      const sendSeconds = (Date.now() - rateStart) / 1000;
      await Promise.all(open);
      await sender.close();
      // Only a grant the Auth stand-in answered 2xx counts.
      const users = new Set(rows.map((r) => r.user));
      const grants = new Map<string, number>();
      const drainStart = Date.now();
      while (grants.size < rows.length) {
        if (Date.now() - drainStart > 300_000)
          throw new Error(`webhook → role: ${grants.size} of ${rows.length} granted after 300 s`);
        await new Promise((r) => setTimeout(r, 500));
        const calls = (await (await fetch(`${auth.url}/_control/calls`)).json()) as {
          at: string;
          method: string;
          path: string;
          status: number;
        }[];
        for (const c of calls) {
          const user = /\/users\/([^/]+)\/roles$/.exec(c.path)?.[1];
          const id = user ? decodeURIComponent(user) : '';
          if (c.method === 'POST' && c.status >= 200 && c.status < 300 && users.has(id) && !grants.has(id))
            grants.set(id, Date.parse(c.at));
        }
      }
      return { sentAt, grants, rateStart, sendSeconds };
    };
    await drive(0, WARMUP);
    const cpuBefore = cpuSnapshot();
    const { sentAt, grants, rateStart, sendSeconds } = await drive(WARMUP, allRows.length);
    const roleRows = allRows.slice(WARMUP);
    const latencies = [...grants].map(([user, at]) => at - sentAt.get(user)!).sort((a, b) => a - b);
    const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    const lastGrant = Math.max(...grants.values());
    emit(
      `| webhook → role granted (2xx) at the Auth stand-in, ${RATE} events/s for ${SECONDS} s (sent in ${sendSeconds.toFixed(1)} s, at most ${MAX_IN_FLIGHT} open) | ${Math.round((roleRows.length * 1000) / (lastGrant - rateStart))} granted/s overall | ${pct(0.5)} / ${pct(0.99)} | – | – | p50 ≤ 25 ms, p99 ≤ 100 ms |`,
    );
    process.stdout.write(
      `  cpu (cores) from the first delivery to the last grant: ${cpuShares(cpuBefore, cpuSnapshot(), (lastGrant - rateStart) / 1000)}\n`,
    );
    memory(`role-worker after load ${rssMb(roleWorker.pid)} MB (heap in use ${await heapFigures(roleWorker.url)} MB)`);
  }

  // Renewals: RENEWALS active subscriptions falling due at once, three scheduler replicas and two
  // payment-workers charging their saved wallets at the PayPal stand-in; timed from the moment they
  // fall due until every renewal payment is completed; captures counted per subscription.
  if (only.has('renewals')) {
    await purge();
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
    // Only this phase makes renewal payments: a plain count, cheap enough not to weigh on what it measures.
    const renewed = async () =>
      Number(
        (
          await sql<{
            n: string;
          }>`select count(*) as n from payments where kind = 'renewal' and status = 'completed'`.execute(tdb.db)
        ).rows[0]!.n,
      );
    while ((await renewed()) < RENEWALS) {
      if (Date.now() - fellDue > 600_000) throw new Error(`renewals: not all ${RENEWALS} completed within 10 minutes`);
      await new Promise((r) => setTimeout(r, 500));
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
    emit(renewalLine);
    memory(
      `scheduler after load ${(await Promise.all(schedulers.map((x) => rssMb(x.pid)))).join(' / ')} MB; payment-worker after renewals ${rssMb(worker.pid)} MB`,
    );
  }
  await broker.close();
  // The overload README's Performance section describes, as measured on what had landed: 600 buyers of a 30-second plan
  // (about 20 renewals a second once they are all active) approving at 10 a second, the whole
  // system running for 5 minutes. Run on the e2e stack (the apps from source, every process of
  // it), after the processes above have stopped. Reported: approval → role granted (2xx at the
  // Auth stand-in), messages sent round a retry queue, and captures per order and per period.
  if (only.has('overload')) {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1_000));
    const { startStack } = await import('@billing/e2e');
    const { approveAtRate, capturesOf, checkouts, grantedAt, quantile, workerRetries } = await import(
      '@billing/e2e/load'
    );
    const BUYERS = Number(process.env['BENCH_OVERLOAD_BUYERS'] ?? 600);
    const MINUTES = Number(process.env['BENCH_OVERLOAD_MINUTES'] ?? 5);
    const stack = await startStack(
      { RENEWAL_LEAD_MS: '5000' },
      {
        plans: [
          {
            id: 'half-minute',
            name: 'Half a minute',
            description: '',
            amount: 100,
            currency: 'USD',
            period: 'PT30S',
            role: 'half',
            active: true,
          },
        ],
      },
    );
    try {
      const buyers = await checkouts(stack, 'overload', BUYERS, { planId: 'half-minute' });
      const started = Date.now();
      const before = await workerRetries(stack);
      const approvedAt = await approveAtRate(stack, buyers, 10);
      const users = new Set(buyers.map((b) => b.userId));
      let grants = await grantedAt(stack, users);
      while (Date.now() - started < MINUTES * 60_000) {
        await new Promise((r) => setTimeout(r, 5_000));
        grants = await grantedAt(stack, users);
      }
      const after = await workerRetries(stack);
      const lags = buyers.map((b) => (grants.get(b.userId) ?? Infinity) - approvedAt.get(b.userId)!);
      const seen = await capturesOf(stack, buyers);
      emit(
        `| overload: ${BUYERS} buyers of a 30 s plan approving at 10/s, ${MINUTES} min in all (e2e stack) | ${grants.size} of ${BUYERS} granted; ${seen.paidPeriods} periods paid, ${seen.periodsPaidTwice} twice; ${seen.capturedTwice} orders captured twice | ${quantile(lags, 0.5)} / ${quantile(lags, 0.99)} (approval → role) | – | – | every role within 30 s; retried ${after.retried - before.retried}, requeued ${after.requeued - before.requeued} |`,
      );
    } finally {
      await stack.stop();
    }
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  await tdb.drop();
  await vhost.drop();
}
