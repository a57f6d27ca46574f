import t from 'tap';
import { trustProxyOf } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { createHttpApp } from '../src/http.js';
import { registerRateLimits } from '../src/rate-limit.js';
import { TtlCache } from '../src/ttl-cache.js';
import { Writable } from 'node:stream';

t.test('TRUST_PROXY: nobody by default; true; a number of hops; a list', async (t) => {
  t.equal(trustProxyOf(undefined), false);
  t.equal(trustProxyOf(' false '), false);
  t.equal(trustProxyOf('true'), true);
  const hops = trustProxyOf('2') as (a: string, i: number) => boolean;
  t.same([hops('10.0.0.1', 0), hops('10.0.0.1', 1), hops('10.0.0.1', 2)], [true, true, false]);
  t.same(trustProxyOf('loopback, 10.0.0.0/8,'), ['loopback', '10.0.0.0/8']);
});

t.test('TtlCache: entries expire, and the oldest goes when full', async (t) => {
  const c = new TtlCache<number>(1000, 2);
  c.set('a', 1, 0);
  c.set('b', 2, 0);
  t.equal(c.get('a', 999), 1);
  t.equal(c.get('a', 1000), undefined, 'expired');
  c.set('c', 3, 0);
  c.set('d', 4, 0);
  t.equal(c.get('b', 10), undefined, 'the oldest went when the cache was full');
  t.equal(c.get('d', 10), 4);
});

t.test(
  'per-client limits answer 429 rate-limited with Retry-After; routes without a limit are not counted',
  async (t) => {
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    const app = createHttpApp({
      service: 'guards',
      logger: createLogger({ service: 'guards', level: 'error', stream: quiet }),
      metrics: createMetrics('guards'),
      readiness: { check: async () => ({ ok: true, checks: {} }) } as never,
      trustProxy: trustProxyOf('true'),
    });
    await registerRateLimits(app);
    app.get('/limited', { config: { rateLimit: { max: 2, timeWindow: '1 minute' } } }, async () => ({ ok: true }));
    app.get('/free', async () => ({ ok: true }));
    t.teardown(() => app.close());
    const hit = (url: string, ip: string) => app.inject({ url, headers: { 'x-forwarded-for': ip } });
    t.same(
      [(await hit('/limited', '192.0.2.1')).statusCode, (await hit('/limited', '192.0.2.1')).statusCode],
      [200, 200],
    );
    const over = await hit('/limited', '192.0.2.1');
    t.equal(over.statusCode, 429);
    t.equal(over.json().type, '/problems/rate-limited');
    t.ok(Number(over.headers['retry-after']) >= 1);
    t.equal((await hit('/limited', '192.0.2.2')).statusCode, 200, 'another client has its own count');
    for (let i = 0; i < 5; i++) t.equal((await hit('/free', '192.0.2.1')).statusCode, 200);
    const long = await app.inject({ url: `/free/${'a'.repeat(300)}` });
    t.equal(
      long.headers['content-type']?.toString().startsWith('application/problem+json'),
      true,
      'a long path is a problem+json 404, not a framework 414',
    );
  },
);

t.test('Postgres away mid-request: 503 database-unavailable with Retry-After, not a 500', async (t) => {
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  const app = createHttpApp({
    service: 'outage',
    logger: createLogger({ service: 'outage', level: 'error', stream: quiet }),
    metrics: createMetrics('outage'),
    readiness: { check: async () => ({ ok: true, checks: {} }) } as never,
  });
  // What pg and our pool raise when the server goes (terminated backend, lost socket, no host
  // taking writes during a failover), and a plain bug for contrast.
  const errors: Record<string, () => Error> = {
    terminated: () =>
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    lost: () => new Error('Connection terminated unexpectedly'),
    refused: () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    'no-writer': () =>
      Object.assign(new Error('no host of DATABASE_URL accepts read-write sessions now'), { code: '08001' }),
    bug: () => new TypeError('x is undefined'),
  };
  app.get('/boom/:kind', async (req) => {
    throw errors[(req.params as { kind: string }).kind]!();
  });
  await app.ready();
  t.teardown(() => app.close());
  for (const kind of ['terminated', 'lost', 'refused', 'no-writer']) {
    const res = await app.inject({ url: `/boom/${kind}` });
    t.equal(res.statusCode, 503, kind);
    t.equal(res.headers['retry-after'], '2');
    t.match(res.json(), { type: '/problems/database-unavailable', status: 503 });
  }
  const bug = await app.inject({ url: '/boom/bug' });
  t.equal(bug.statusCode, 500, 'a bug stays a 500');
});
