import t from 'tap';
import { baseConfig, checkJwt, ConfigError, env, jwtConfig, loadConfig, paypalConfig } from '../src/config.js';

t.test('defaults from docs/processes.md apply when variables are unset', async (t) => {
  const c = loadConfig({ ...baseConfig, PORT: env.port(3000) }, {});
  t.equal(c.DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/billing');
  t.equal(c.AMQP_URL, 'amqp://guest:guest@127.0.0.1:5672');
  t.equal(c.PORT, 3000);
  t.equal(c.LOG_LEVEL, 'info');
  t.equal(c.ELASTICSEARCH_URL, undefined);
});

t.test('one line per missing or malformed variable', async (t) => {
  const err = t.throws(() =>
    loadConfig(
      { ...baseConfig, ...paypalConfig, PORT: env.port(3000), DUNNING_RETRY_MS: env.msList('1') },
      {
        DATABASE_URL: 'mysql://x',
        AMQP_URL: 'not a url',
        PORT: '70000',
        PAYPAL_TIMEOUT_MS: 'ten',
        DUNNING_RETRY_MS: '1,x',
      },
    ),
  ) as ConfigError;
  t.ok(err instanceof ConfigError);
  const lines = err.problems;
  t.match(lines, [
    /^DATABASE_URL must use postgres or postgresql/,
    /^AMQP_URL is not a valid URL/,
    /^PAYPAL_API_BASE|^PAYPAL_CLIENT_ID/,
  ]);
  for (const name of [
    'DATABASE_URL',
    'AMQP_URL',
    'PORT',
    'PAYPAL_CLIENT_ID',
    'PAYPAL_CLIENT_SECRET',
    'PAYPAL_TIMEOUT_MS',
    'DUNNING_RETRY_MS',
  ]) {
    t.equal(lines.filter((l) => l.startsWith(`${name} `)).length, 1, `${name} named once`);
  }
});

t.test('exactly one of JWT_SECRET and JWT_PUBLIC_KEY', async (t) => {
  t.match(checkJwt({}), [/required/]);
  t.match(checkJwt({ JWT_SECRET: 's', JWT_PUBLIC_KEY: 'k' }), [/both set/]);
  t.match(checkJwt({ JWT_PUBLIC_KEY: 'not a pem' }), [/malformed/]);
  t.same(checkJwt({ JWT_SECRET: 'a-long-secret-of-32-bytes-or-more!' }), []);
  const c = loadConfig(jwtConfig, { JWT_SECRET: 'x'.repeat(32), JWT_ISSUER: 'auth' }, checkJwt);
  t.equal(c.JWT_ISSUER, 'auth');
  t.throws(() => loadConfig(jwtConfig, {}, checkJwt), { message: /JWT_SECRET or JWT_PUBLIC_KEY is required/ });
  // One round: a bad variable and a missing JWT key are reported together.
  const both = t.throws(() =>
    loadConfig({ ...jwtConfig, ...baseConfig }, { DATABASE_URL: 'mysql://x' }, checkJwt),
  ) as ConfigError;
  t.match(both.problems, [/^DATABASE_URL/, /JWT_SECRET or JWT_PUBLIC_KEY is required/], 'both in one round');
});

t.test('AMQP_URL takes one broker or every node of a cluster, each URL checked', async (t) => {
  const one = loadConfig(baseConfig, { AMQP_URL: 'amqp://guest:guest@mq:5672' });
  t.equal(one.AMQP_URL, 'amqp://guest:guest@mq:5672');
  const three = loadConfig(baseConfig, { AMQP_URL: 'amqp://a:5672, amqp://b:5672 ,amqp://c:5672' });
  t.equal(three.AMQP_URL, 'amqp://a:5672,amqp://b:5672,amqp://c:5672', 'kept as a clean list');
  const bad = t.throws(() => loadConfig(baseConfig, { AMQP_URL: 'amqp://a:5672,http://b' })) as ConfigError;
  t.match(bad.problems, [/^AMQP_URL \(URL 2\) must use amqp or amqps/]);
});

t.test('DATABASE_URL may name several hosts (docs/guarantees.md, Postgres failover); each is checked', async (t) => {
  const several = 'postgres://app:pw@db-0:5432,db-1:5433/billing?target_session_attrs=read-write';
  t.equal(loadConfig(baseConfig, { DATABASE_URL: several }).DATABASE_URL, several, 'kept as given');
  const err = t.throws(() =>
    loadConfig(baseConfig, { DATABASE_URL: 'postgres://db-0:5432,:x/billing' }),
  ) as ConfigError;
  t.match(err.problems, [/^DATABASE_URL/]);
});
