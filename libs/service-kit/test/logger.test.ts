import { Writable } from 'node:stream';
import t from 'tap';
import { startElasticsearchStandIn, waitFor } from '@billing/testing';
import { runWithCorrelation } from '../src/context.js';
import { closeLogger, createLogger } from '../src/logger.js';
import { secretValues } from '../src/config.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJyb2xlcyI6WyJ1c2VyIl19.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu';
const PAYPAL_SECRET = 'EOJs-paypal-client-secret-0123456789abcdef';
const AUTH_TOKEN = 'svc-token-5f1f0c8e9a';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _e, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

t.test('secrets logged by mistake never reach stdout or the Elasticsearch bulk body', async (t) => {
  const es = await startElasticsearchStandIn();
  t.teardown(() => es.close());
  const out = capture();
  const secrets = secretValues({
    PAYPAL_CLIENT_SECRET: PAYPAL_SECRET,
    AUTH_SERVICE_TOKEN: AUTH_TOKEN,
    DATABASE_URL: 'postgres://billing:db-pa55word@db:5432/billing',
  });
  const logger = createLogger({ service: 'test', elasticsearchUrl: es.url, secrets, stream: out.stream });

  runWithCorrelation('corr-123', () => {
    logger.info(`received token ${JWT}`);
    logger.info('calling paypal', {
      headers: { Authorization: `Basic ${Buffer.from(`id:${PAYPAL_SECRET}`).toString('base64')}` },
      clientSecret: PAYPAL_SECRET,
    });
    logger.warn('auth call', {
      note: `used ${AUTH_TOKEN} for the call`,
      url: `https://app/v1/checkout/return?token=EC-123&access_token=${JWT}&plan=pro`,
    });
    logger.error('db failed', {
      err: new Error(`connect to postgres://billing:db-pa55word@db:5432/billing failed`),
      password: 'hunter22',
      cookie: 'session=abc',
    });
    logger.info('nested', { payload: { deep: { paypal_client_secret: PAYPAL_SECRET, list: [JWT, 'fine'] } } });
  });

  await waitFor(() => es.documents().length >= 5, {
    what: 'five documents at the Elasticsearch stand-in',
    timeoutMs: 10_000,
  });
  await closeLogger(logger);

  const stdout = out.lines.join('\n');
  const bulk = es.bulkBodies.join('\n');
  t.equal(out.lines.length, 5, 'five lines on stdout');
  for (const [where, text] of [
    ['stdout', stdout],
    ['bulk body', bulk],
  ] as const) {
    t.notOk(text.includes(JWT), `${where}: no JWT`);
    t.notOk(text.includes(JWT.split('.')[1] as string), `${where}: no JWT payload`);
    t.notOk(text.includes(PAYPAL_SECRET), `${where}: no PayPal secret`);
    t.notOk(text.includes(Buffer.from(`id:${PAYPAL_SECRET}`).toString('base64')), `${where}: no Basic credentials`);
    t.notOk(text.includes(AUTH_TOKEN), `${where}: no service token`);
    t.notOk(text.includes('db-pa55word'), `${where}: no database password`);
    t.notOk(text.includes('hunter22'), `${where}: no password field`);
    t.notOk(text.includes('session=abc'), `${where}: no cookie`);
    t.ok(text.includes('[REDACTED]'), `${where}: redaction marks are there`);
    t.ok(text.includes('plan=pro'), `${where}: harmless query parameters stay`);
  }
  const first = JSON.parse(out.lines[0] as string) as Record<string, unknown>;
  t.equal(first['correlationId'], 'corr-123', 'every line carries the correlation id');
  t.equal(first['service'], 'test');
  t.ok(
    es.documents().every((d) => JSON.stringify(d).includes('corr-123')),
    'the Elasticsearch documents carry it too',
  );
});

t.test('lines below the level are dropped before any work', async (t) => {
  const out = capture();
  const logger = createLogger({ service: 'test', level: 'warn', stream: out.stream });
  let walked = 0;
  const meta = {
    nested: {
      get costly() {
        walked++;
        return 'x';
      },
    },
  };
  logger.info('not written', meta);
  logger.debug('not written either', meta);
  logger.warn('written');
  await new Promise((r) => setImmediate(r));
  t.equal(out.lines.length, 1);
  t.match(out.lines[0], /written/);
  t.equal(walked, 0, 'the meta of a dropped line was never read');
});
