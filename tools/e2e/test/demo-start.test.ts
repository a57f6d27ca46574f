import { spawnSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { freePort, REPO_ROOT } from '@billing/testing';

// README quick start: `npm start` on a machine where PostgreSQL or RabbitMQ cannot be reached says so,
// one line per service with how to get it, and exits 1 (no stack trace, nothing started).
t.test('npm start without Postgres and RabbitMQ: one clear line per missing service, exit 1', async (t) => {
  const [pgPort, amqpPort] = [await freePort(), await freePort()];
  const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'tools/demo/start.ts')], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env['PATH'],
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/billing`,
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${amqpPort}`,
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(res.status, 1, 'exit 1');
  const lines = res.stderr.trim().split('\n');
  t.match(lines, [
    new RegExp(`^npm start: PostgreSQL is not reachable at 127\\.0\\.0\\.1:${pgPort}: install PostgreSQL`),
    new RegExp(`^npm start: RabbitMQ is not reachable at 127\\.0\\.0\\.1:${amqpPort}: install RabbitMQ`),
  ]);
  t.equal(lines.length, 2, 'nothing else: no stack trace');
  t.notMatch(res.stdout, /database ready/, 'nothing started');
});
