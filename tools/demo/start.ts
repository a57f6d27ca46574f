// `npm start`: the local demo. Migrates, imports the demo plans, starts the PayPal and Auth
// stand-ins and the six apps wired to them, and prints what to run to buy a plan.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { appUrl, createDb, defaultRoles, importCatalog, migrateWithRoles, type AppName } from '@billing/db';
import { ensureServices } from './services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/billing';
const AMQP_URL = process.env['AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
// Each app connects as its own least-privileged role `npm run migrate` makes (docs/data.md).
const roles = defaultRoles();
const env = {
  AMQP_URL,
  LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn',
  // No published secret: one made for this run unless given (the Auth stand-in signs with it too).
  JWT_SECRET: process.env['JWT_SECRET'] ?? randomBytes(32).toString('hex'),
  // The demo listens on this machine only.
  HOST: '127.0.0.1',
  AUTH_SERVICE_URL: 'http://127.0.0.1:4000',
  AUTH_SERVICE_TOKEN: 'demo-service-token',
  PAYPAL_API_BASE: 'http://127.0.0.1:4100',
  PAYPAL_CLIENT_ID: 'demo-client-id',
  PAYPAL_CLIENT_SECRET: 'demo-client-secret',
  PAYPAL_WEBHOOK_ID: 'WH-DEMO',
  PUBLIC_BASE_URL: 'http://127.0.0.1:3000',
  APP_HOME_URL: 'http://127.0.0.1:3000/billing',
  SCHEDULER_INTERVAL_MS: process.env['SCHEDULER_INTERVAL_MS'] ?? '5000',
  RENEWAL_LEAD_MS: process.env['RENEWAL_LEAD_MS'] ?? '10000',
  ...(process.env['ELASTICSEARCH_URL'] ? { ELASTICSEARCH_URL: process.env['ELASTICSEARCH_URL'] } : {}),
};

async function ensureDatabase(): Promise<void> {
  const url = new URL(DATABASE_URL);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  const exists = await c.query('select 1 from pg_database where datname = $1', [name]);
  if (!exists.rowCount) await c.query(`create database "${name.replace(/"/g, '')}"`);
  await c.end();
}

await ensureServices(DATABASE_URL, AMQP_URL);
await ensureDatabase();
await migrateWithRoles(DATABASE_URL, roles);
const db = createDb(DATABASE_URL, { max: 1 });
const plans = await importCatalog(db, JSON.parse(await readFile(path.join(root, 'tools/demo/plans.json'), 'utf8')));
await db.destroy();
process.stdout.write(
  `database ready; demo plans: ${plans.created} created, ${plans.updated} updated, ${plans.unchanged} unchanged\n`,
);

const children: ChildProcess[] = [];
function start(name: string, entry: string, extra: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, entry)], {
    cwd: root,
    env: { ...process.env, ...env, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const prefix = (b: Buffer) =>
    b
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => `[${name}] ${l}\n`)
      .join('');
  child.stdout?.on('data', (b: Buffer) => process.stdout.write(prefix(b)));
  child.stderr?.on('data', (b: Buffer) => process.stderr.write(prefix(b)));
  child.on('exit', (code) => {
    if (!stopping) process.stderr.write(`[${name}] exited with ${code}\n`);
  });
  const port = extra['PORT'];
  const probe = name.endsWith('stand-in') || name === 'paypal-sandbox' ? '/_control/calls' : '/health/ready';
  return (async () => {
    for (let i = 0; i < 150; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}${probe}`)).ok) return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${name} did not become ready on port ${port}`);
  })();
}

let stopping = false;
const stopAll = () => {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => process.exit(0), 10_000).unref();
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('exit', r))))).then(() =>
    process.exit(0),
  );
};
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);

await start('paypal-sandbox', 'tools/paypal-sandbox/src/main.ts', {
  PORT: '4100',
  HOST: '127.0.0.1',
  WEBHOOK_URL: 'http://127.0.0.1:3001/webhooks/paypal',
  PUBLIC_URL: 'http://127.0.0.1:4100',
});
await start('auth-stand-in', 'tools/auth-stand-in/src/main.ts', { PORT: '4000', HOST: '127.0.0.1' });
const apps: [AppName, string][] = [
  ['billing-api', '3000'],
  ['webhook-gateway', '3001'],
  ['admin-portal', '3002'],
  ['payment-worker', '3010'],
  ['role-worker', '3011'],
  ['scheduler', '3012'],
];
for (const [app, port] of apps)
  await start(app, `apps/${app}/src/main.ts`, { PORT: port, DATABASE_URL: appUrl(DATABASE_URL, roles, app) });

process.stdout.write(`
All up: billing-api :3000, webhook-gateway :3001, admin-portal :3002, workers :3010-3012,
PayPal stand-in :4100, Auth stand-in :4000 (users alice, bob, carol, admin; password <login>-password).

1. Get a token for alice:
   TOKEN=$(curl -s -X POST localhost:4000/api/v1/auth/login -H 'content-type: application/json' -d '{"login":"alice","password":"alice-password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
2. Buy a plan (see them with: curl -s localhost:3000/v1/plans):
   curl -s -X POST localhost:3000/v1/subscriptions -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"planId":"pro-monthly"}'
3. Open the "approvalUrl" it prints in a browser and click Approve (PayPal's stand-in), or:
   curl -s -X POST localhost:4100/_control/orders/<order id from the approvalUrl>/approve
4. See the role change at the Auth service, and the subscription:
   curl -s localhost:4000/api/v1/users/user-alice/roles -H 'authorization: Bearer demo-service-token'
   curl -s localhost:3000/v1/subscriptions -H "authorization: Bearer $TOKEN"
   Notifications wait on the RabbitMQ queue notifications.billing.

Ctrl+C stops everything.
`);
