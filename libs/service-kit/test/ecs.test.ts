import t from 'tap';
import { ECS_VERSION, toEcsDocument } from '../src/ecs.js';

// The Elasticsearch transport's transformer (tools/elk's test checks its output against the
// index template through a real transport; these are the edge cases).
t.test('a plain line: timestamp, message, level, service, correlation id', async (t) => {
  const doc = toEcsDocument({
    message: 'hello',
    level: 'info',
    timestamp: '2026-11-28T10:00:00.000Z',
    meta: { service: 'billing-api', correlationId: 'c-1', timestamp: 'ignored', skipped: undefined },
  });
  t.same(doc, {
    '@timestamp': '2026-11-28T10:00:00.000Z',
    message: 'hello',
    ecs: { version: ECS_VERSION },
    log: { level: 'info' },
    service: { name: 'billing-api' },
    trace: { id: 'c-1' },
  });
});

t.test('errors of every shape become error.*', async (t) => {
  const e = new TypeError('bad');
  t.match(toEcsDocument({ message: 'x', level: 'error', meta: { err: e } }), {
    error: { type: 'TypeError', message: 'bad', stack_trace: /TypeError: bad/ },
  });
  t.match(
    toEcsDocument({ message: 'x', level: 'error', meta: { err: { name: 'PgError', message: 'gone', stack: 's' } } }),
    {
      error: { type: 'PgError', message: 'gone', stack_trace: 's' },
    },
  );
  t.match(toEcsDocument({ message: 'x', level: 'warn', meta: { error: { code: 7 } } }), {
    error: { message: '{"code":7}' },
  });
  t.match(toEcsDocument({ message: 'x', level: 'warn', meta: { error: 'socket hang up' } }), {
    error: { message: 'socket hang up' },
  });
});

t.test('a PayPal line: provider.*; elsewhere status is the HTTP response', async (t) => {
  const paypal = toEcsDocument({
    message: 'paypal response',
    level: 'info',
    meta: { provider: 'paypal', op: 'createOrder', status: 201, summary: { id: 'O-1' }, waitMs: 10 },
  });
  t.match(paypal, {
    provider: { name: 'paypal', operation: 'createOrder', status_code: 201, response: { id: 'O-1' }, wait_ms: 10 },
  });
  t.notOk('http' in paypal);
  const other = toEcsDocument({
    message: 'http request',
    level: 'info',
    meta: { status: 404, op: 'kept', summary: 's' },
  });
  t.match(other, { http: { response: { status_code: 404 } }, billing: { op: 'kept', summary: 's' } });
  t.notOk('provider' in other);
});

t.test('non-string identifiers are written as text, odd values are kept under billing', async (t) => {
  const doc = toEcsDocument({
    message: { not: 'a string' },
    level: 'info',
    meta: { userId: 42, paymentId: '', ms: 'slow', job: 'renewals', eventId: null },
  });
  t.equal(doc['message'], '{"not":"a string"}');
  t.match(doc, { user: { id: '42' }, job: { name: 'renewals' }, billing: { ms: 'slow' } });
  t.notOk('payment' in doc, 'an empty id is left out');
  t.notOk('event' in doc, 'a null id is left out');
  t.match(toEcsDocument({ message: undefined, level: 'info', meta: {} }), { message: '' });
  t.ok(typeof toEcsDocument({ message: 'x', level: 'info', meta: {} })['@timestamp'] === 'string');
});
