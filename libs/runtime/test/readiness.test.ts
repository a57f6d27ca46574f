import { Writable } from 'node:stream';
import t, * as Tap from 'tap';
import winston from 'winston';
import { createMigratedTestDb } from '@billing/db/testing';
import { createTestVhost, startTcpProxy, viaProxy, waitFor } from '@billing/testing';
import { createHealthServer, createRuntime } from '../src/runtime.js';

const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
t.teardown(async () => {
  await tdb.drop();
  await vhost.drop();
});

/** A runtime whose Postgres or RabbitMQ connection goes through a proxy the test can cut; logs are silenced. */
async function throughProxy(t: Tap.Test, which: 'postgres' | 'rabbitmq') {
  const target = new URL(which === 'postgres' ? tdb.url : vhost.url);
  const proxy = await startTcpProxy({
    host: target.hostname,
    port: Number(target.port || (which === 'postgres' ? 5432 : 5672)),
  });
  const rt = createRuntime('readiness-test', {
    DATABASE_URL: which === 'postgres' ? viaProxy(tdb.url, proxy) : tdb.url,
    AMQP_URL: which === 'rabbitmq' ? viaProxy(vhost.url, proxy) : vhost.url,
    LOG_LEVEL: 'error',
  });
  rt.logger.clear().add(new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }));
  const app = createHealthServer(rt);
  t.teardown(async () => {
    await app.close();
    await rt.close();
    await proxy.close();
  });
  return { proxy, ready: () => app.inject({ method: 'GET', url: '/health/ready' }) };
}

t.test('readiness turns 503 when Postgres is unreachable and back to 200 when it returns', async (t) => {
  const { proxy, ready } = await throughProxy(t, 'postgres');

  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready' });
  t.same((await ready()).json(), { status: 'ok', checks: { postgres: 'up', rabbitmq: 'up' } });

  proxy.cut();
  const down = await waitFor(
    async () => {
      const r = await ready();
      return r.statusCode === 503 ? r : null;
    },
    { what: '503 while Postgres is cut' },
  );
  t.same(down.json(), { status: 'unavailable', checks: { postgres: 'down', rabbitmq: 'up' } });

  proxy.restore();
  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready again', timeoutMs: 20_000 });
  t.pass('back to 200 once Postgres is reachable');
});

t.test('readiness says rabbitmq down when the broker is unreachable', async (t) => {
  const { proxy, ready } = await throughProxy(t, 'rabbitmq');
  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready' });
  proxy.cut();
  const down = await waitFor(
    async () => {
      const r = await ready();
      return r.statusCode === 503 ? r : null;
    },
    { what: '503 while RabbitMQ is cut' },
  );
  t.same(down.json(), { status: 'unavailable', checks: { postgres: 'up', rabbitmq: 'down' } });
  proxy.restore();
  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready again', timeoutMs: 20_000 });
});
