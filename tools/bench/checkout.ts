// Checkout throughput and p99 latency of the real billing-api (JWT, Auth roles, two
// transactions, a PayPal order at the local stand-in), next to the bare baseline of
// ../shared/BASELINES.md measured in the same run. Prints figures and ratios; not a test.
//   npx tsx tools/bench/checkout.ts [--duration 10] [--runs 1] [--connections 50]
import autocannon from 'autocannon';
import { signJwt } from '@billing/auth-stand-in';
import { createMigratedTestDb } from '@billing/db/testing';
import { importCatalog } from '@billing/db';
import { appEnv, createTestVhost, freePort, spawnTs, waitForHttp, type Spawned } from '@billing/testing';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const duration = arg('duration', 10);
const runs = arg('runs', 1);
const connections = arg('connections', 50);
process.env['DATABASE_URL'] ??= 'postgres://postgres@127.0.0.1:5432/postgres';
process.env['AMQP_URL'] ??= 'amqp://guest:guest@127.0.0.1:5672';

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
const procs: Spawned[] = [];
async function start(entry: string, env: Record<string, string>, probe: string): Promise<string> {
  const port = await freePort();
  const p = spawnTs(entry, { ...env, PORT: String(port) });
  procs.push(p);
  await waitForHttp(`http://127.0.0.1:${port}${probe}`, 200, 30_000).catch((e: Error) => {
    throw new Error(`${entry}: ${e.message}\n${p.output()}`);
  });
  return `http://127.0.0.1:${port}`;
}

type Result = { rps: number; p99: number; errors: number };
async function measure(opts: autocannon.Options): Promise<Result> {
  await autocannon({ ...opts, duration: 2, connections });
  const results: Result[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await autocannon({ ...opts, duration, connections });
    results.push({ rps: r.requests.average, p99: r.latency.p99, errors: r.non2xx + r.errors + r.timeouts });
  }
  results.sort((a, b) => a.rps - b.rps);
  return results[Math.floor(results.length / 2)]!;
}

try {
  const baseline = await start(
    'tools/bench/baseline.ts',
    { DATABASE_URL: tdb.url, PATH: process.env['PATH'] ?? '' },
    '/hello',
  );
  const hello = await measure({ url: `${baseline}/hello` });
  let n = 0;
  const insert = await measure({
    url: `${baseline}/payment`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ userId: `u${n++}`, amount: 999 }) }) }],
  });
  await procs.shift()!.stop();

  const secret = 'bench-jwt-secret-0123456789';
  const paypal = await start(
    'tools/paypal-sandbox/src/main.ts',
    { PAYPAL_CLIENT_ID: 'bench', PAYPAL_CLIENT_SECRET: 'bench-secret', PAYPAL_WEBHOOK_ID: 'WH-B', HOST: '127.0.0.1' },
    '/_control/calls',
  );
  const auth = await start(
    'tools/auth-stand-in/src/main.ts',
    { JWT_SECRET: secret, AUTH_SERVICE_TOKEN: 'bench-token', HOST: '127.0.0.1' },
    '/_control/calls',
  );
  const api = await start(
    'apps/billing-api/src/main.ts',
    appEnv({
      DATABASE_URL: tdb.url,
      AMQP_URL: vhost.url,
      JWT_SECRET: secret,
      AUTH_SERVICE_URL: auth,
      AUTH_SERVICE_TOKEN: 'bench-token',
      PAYPAL_API_BASE: paypal,
      PAYPAL_CLIENT_ID: 'bench',
      PAYPAL_CLIENT_SECRET: 'bench-secret',
      LOG_LEVEL: 'warn',
    }) as Record<string, string>,
    '/health/ready',
  );
  // 10 checkouts a minute per user (docs/api.md): rotate over enough users that none is limited.
  const now = Math.floor(Date.now() / 1000);
  const tokens = Array.from({ length: 20_000 }, (_, i) =>
    signJwt({ sub: `bench-user-${i}`, roles: ['user'], iat: now, exp: now + 3600 }, { alg: 'HS256', secret }),
  );
  let u = 0;
  const checkout = await measure({
    url: `${api}/v1/subscriptions`,
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
  const plans = await measure({ url: `${api}/v1/plans` });
  const row = (name: string, r: Result, base?: Result) =>
    `| ${name} | ${Math.round(r.rps)} | ${r.p99} | ${r.errors} | ${base ? `${((100 * r.rps) / base.rps).toFixed(1)}%` : '100%'} | ${base ? `${(r.p99 / Math.max(1, base.p99)).toFixed(1)}x` : '1x'} |`;
  process.stdout.write(
    `\n${connections} connections, ${duration} s runs, median of ${runs}\n\n| scenario | req/s | p99 ms | non-2xx/errors | throughput vs (a) or (d') | p99 vs |\n|---|---|---|---|---|---|\n`,
  );
  process.stdout.write(
    `${row('(a) bare Fastify GET', hello)}\n${row("(d') bare POST: payment + outbox in one tx", insert, hello)}\n`,
  );
  process.stdout.write(
    `${row('billing-api GET /v1/plans', plans, hello)}\n${row("billing-api POST /v1/subscriptions (vs d')", checkout, insert)}\n`,
  );
  const orders = ((await (await fetch(`${paypal}/_control/calls`)).json()) as { path: string }[]).filter(
    (c) => c.path === '/v2/checkout/orders',
  ).length;
  process.stdout.write(`\ncheckouts answered 201 and PayPal orders created: ${orders}\n`);
} finally {
  for (const p of procs) await p.stop();
  await tdb.drop();
  await vhost.drop();
}
