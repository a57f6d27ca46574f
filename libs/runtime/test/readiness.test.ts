import { Writable } from 'node:stream';
import t from 'tap';
import { createMigratedTestDb } from '@billing/db/testing';
import { createTestVhost, startTcpProxy, viaProxy, waitFor } from '@billing/testing';
import { createHealthServer, createRuntime } from '../src/runtime.js';

const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
t.teardown(async () => {
  await tdb.drop();
  await vhost.drop();
});

t.test('readiness turns 503 when Postgres is unreachable and back to 200 when it returns', async (t) => {
  const pgUrl = new URL(tdb.url);
  const proxy = await startTcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
  const rt = createRuntime('readiness-test', { DATABASE_URL: viaProxy(tdb.url, proxy), AMQP_URL: vhost.url, LOG_LEVEL: 'error' });
  rt.logger.clear().add(new (await import('winston')).default.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }));
  const app = createHealthServer(rt);
  t.teardown(async () => {
    await app.close();
    await rt.close();
    await proxy.close();
  });
  const ready = async () => app.inject({ method: 'GET', url: '/health/ready' });

  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready' });
  t.same((await ready()).json(), { status: 'ok', checks: { postgres: 'up', rabbitmq: 'up' } });

  proxy.cut();
  const down = await waitFor(async () => {
    const r = await ready();
    return r.statusCode === 503 ? r : null;
  }, { what: '503 while Postgres is cut' });
  t.same(down.json(), { status: 'unavailable', checks: { postgres: 'down', rabbitmq: 'up' } });

  proxy.restore();
  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready again', timeoutMs: 20_000 });
  t.pass('back to 200 once Postgres is reachable');
});

t.test('readiness says rabbitmq down when the broker is unreachable', async (t) => {
  const mq = new URL(vhost.url);
  const proxy = await startTcpProxy({ host: mq.hostname, port: Number(mq.port || 5672) });
  const rt = createRuntime('readiness-test', { DATABASE_URL: tdb.url, AMQP_URL: viaProxy(vhost.url, proxy), LOG_LEVEL: 'error' });
  rt.logger.clear().add(new (await import('winston')).default.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }));
  const app = createHealthServer(rt);
  t.teardown(async () => {
    await app.close();
    await rt.close();
    await proxy.close();
  });
  const ready = async () => app.inject({ method: 'GET', url: '/health/ready' });
  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready' });
  proxy.cut();
  const down = await waitFor(async () => {
    const r = await ready();
    return r.statusCode === 503 ? r : null;
  }, { what: '503 while RabbitMQ is cut' });
  t.same(down.json(), { status: 'unavailable', checks: { postgres: 'up', rabbitmq: 'down' } });
  proxy.restore();
  await waitFor(async () => (await ready()).statusCode === 200, { what: 'ready again', timeoutMs: 20_000 });
});
