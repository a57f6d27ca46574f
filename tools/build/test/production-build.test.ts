import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import pg from 'pg';
import {
  createTestDatabase,
  createTestVhost,
  freePort,
  startElasticsearchStandIn,
  startKibanaStandIn,
  waitForHttp,
} from '@billing/testing';
import { APP_ROLE_SUFFIX, type AppName } from '@billing/db';

// The production build (npm run build): every entry point compiles, and the compiled apps run on
// plain node (no tsx) against a database that the compiled `migrate` prepared with its roles.
const root = path.resolve(import.meta.dirname, '../../..');
const built = spawnSync(process.execPath, ['tools/build/build.mjs'], { cwd: root, encoding: 'utf8' });
t.equal(built.status, 0, `npm run build: ${built.stderr}`);
t.match(built.stdout, /built 12 entry points/);
t.match(built.stdout, /dist\/billing-api\/public\/billing.js/, "the billing page's script, for the browser");

const suffix = randomBytes(4).toString('hex');
const [db, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
t.teardown(async () => {
  await db.drop();
  await vhost.drop();
  const c = new pg.Client({ connectionString: db.url.replace(/\/[^/]+$/, '/postgres') });
  await c.connect();
  for (const r of [...Object.values(APP_ROLE_SUFFIX).map((a) => `b_app_${suffix}_${a}`), `b_owner_${suffix}`])
    await c.query(`drop role if exists ${r}`);
  await c.end();
});
const env = (extra: Record<string, string>) => ({ PATH: process.env['PATH'], ...extra });

t.test('the compiled migrate makes the roles and applies the migrations', async (t) => {
  const run = spawnSync(process.execPath, ['--enable-source-maps', 'dist/migrate/main.js'], {
    cwd: root,
    encoding: 'utf8',
    env: env({ DATABASE_URL: db.url, DB_OWNER_ROLE: `b_owner_${suffix}`, DB_APP_ROLE: `b_app_${suffix}` }),
  });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /applied: 20261126T1400_initial/);
  t.match(run.stdout, /each app connects as its own role/);
  t.match(run.stdout, new RegExp(`webhook-gateway: postgres://b_app_${suffix}_gateway@`));
});

t.test('each compiled app starts on plain node, is ready, and stops cleanly on SIGTERM', async (t) => {
  for (const app of Object.keys(APP_ROLE_SUFFIX) as AppName[]) {
    // Each app as its own role (docs/data.md).
    const appUrl = new URL(db.url);
    appUrl.username = `b_app_${suffix}_${APP_ROLE_SUFFIX[app]}`;
    const port = await freePort();
    const child = spawn(process.execPath, ['--enable-source-maps', `dist/${app}/main.js`], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: env({
        DATABASE_URL: appUrl.toString(),
        AMQP_URL: vhost.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        JWT_SECRET: 'build-test-secret-0123456789abcdef0123',
        AUTH_SERVICE_URL: 'http://127.0.0.1:9',
        AUTH_SERVICE_TOKEN: 'svc',
        PAYPAL_API_BASE: 'http://127.0.0.1:9',
        PAYPAL_CLIENT_ID: 'id',
        PAYPAL_CLIENT_SECRET: 'secret',
        PAYPAL_WEBHOOK_ID: 'WH-1',
      }),
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const started = Date.now();
    await waitForHttp(`http://127.0.0.1:${port}/health/ready`, 200, 20_000).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${app}: ${err.message}\n${out}`);
    });
    const readyMs = Date.now() - started;
    child.kill('SIGTERM');
    t.equal(await exited, 0, `${app}: ready in ${readyMs} ms, exit 0 on SIGTERM`);
    t.notMatch(out, /tsx|ERR_UNKNOWN_FILE_EXTENSION/, `${app}: no TypeScript loader involved`);
  }
});

t.test('the compiled elk-setup finds deploy/elk and installs it (compose runs it so)', async (t) => {
  const [es, kibana] = await Promise.all([startElasticsearchStandIn(), startKibanaStandIn()]);
  t.teardown(() => Promise.all([es.close(), kibana.close()]));
  const run = spawn(process.execPath, ['--enable-source-maps', 'dist/elk-setup/main.js'], {
    cwd: root,
    env: env({ ELASTICSEARCH_URL: es.url, KIBANA_URL: kibana.url }),
  });
  let out = '';
  run.stdout.on('data', (b) => (out += b));
  run.stderr.on('data', (b) => (out += b));
  const code = await new Promise<number | null>((r) => run.on('exit', (c) => r(c)));
  t.equal(code, 0, out);
  t.ok(es.ilmPolicies.has('billing-logs') && es.indexTemplates.has('billing-logs'), 'policy and template installed');
  t.equal(kibana.objects.size, 5, 'the data view, three saved searches and the dashboard imported');
  const missing = spawnSync(process.execPath, ['dist/elk-setup/main.js'], {
    cwd: root,
    encoding: 'utf8',
    env: env({}),
  });
  t.equal(missing.status, 78, 'no ELASTICSEARCH_URL: exit 78 (configuration)');
  t.match(missing.stderr, /ELASTICSEARCH_URL is not set/);
});
