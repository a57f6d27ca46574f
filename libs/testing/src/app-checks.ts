import type { Test } from 'tap';
import { appEnv, freePort, spawnApp, waitForHttp } from './process.js';

/**
 * The promises docs/processes.md makes for every process, checked on the real entry point: it starts,
 * answers live, ready and metrics, and exits 0 on SIGTERM within 10 s; a missing or malformed
 * variable stops it with a line naming the variable.
 */
export function checkProcessContract(
  t: Test,
  { entry, required, env }: { entry: string; required?: string; env: () => Record<string, string> },
): void {
  t.test(`${entry} starts, is ready, serves metrics, and stops cleanly on SIGTERM`, async (t) => {
    const port = await freePort();
    const app = spawnApp(entry, appEnv({ ...env(), PORT: String(port) }));
    t.teardown(() => app.stop('SIGKILL'));
    const ready = await waitForHttp(`http://127.0.0.1:${port}/health/ready`).catch((err: Error) => {
      throw new Error(`${err.message}\n${app.output()}`);
    });
    t.same(await ready.json(), { status: 'ok', checks: { postgres: 'up', rabbitmq: 'up' } });
    const live = await fetch(`http://127.0.0.1:${port}/health/live`);
    t.equal(live.status, 200);
    t.ok(live.headers.get('x-request-id'), 'every answer carries X-Request-Id');
    const echoed = await fetch(`http://127.0.0.1:${port}/health/live`, { headers: { 'x-request-id': 'trace-abc' } });
    t.equal(echoed.headers.get('x-request-id'), 'trace-abc', 'an incoming X-Request-Id is kept');
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const series of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'messages_consumed_total',
      'outbox_backlog',
      'process_cpu_user_seconds_total',
    ]) {
      t.ok(metrics.includes(series), `metrics include ${series}`);
    }
    const started = Date.now();
    const code = await app.stop('SIGTERM');
    t.equal(code, 0, 'exit code 0 after SIGTERM');
    t.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms`);
  });

  t.test(`${entry} refuses to start with a missing or malformed variable`, async (t) => {
    const base = appEnv({ ...env(), PORT: '0' });
    const exitOf = async (overrides: Record<string, string>) => {
      const p = spawnApp(entry, { ...base, ...overrides });
      const guard = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
      const code = await p.exited;
      clearTimeout(guard);
      return { code, output: p.output() };
    };
    if (required) {
      const missing = await exitOf({ [required]: '' });
      t.not(missing.code, 0, `non-zero exit when ${required} is missing`);
      t.match(missing.output, new RegExp(`${required} is required`));
    }
    const malformed = await exitOf({ DATABASE_URL: 'mysql//nope', LOG_LEVEL: 'loud' });
    t.not(malformed.code, 0, 'non-zero exit for a malformed DATABASE_URL');
    t.match(malformed.output, /DATABASE_URL is not a valid URL/);
    t.match(malformed.output, /LOG_LEVEL must be one of/, 'every bad variable is named, one line each');
  });
}
