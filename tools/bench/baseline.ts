// BASELINES.md's bare scenarios, measured in the same run as the project: (a) a Fastify GET
// returning a small JSON object, (d') a POST inserting a payment row and an outbox row in one
// transaction through a pg Pool of 10. Like the apps, the baselines publish their outbox rows
// after the commit (persistent, with confirms, to a quorum queue) and mark each batch published
// with one UPDATE: a baseline that never published its outbox would be doing less work.
import { createHmac, randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import Fastify from 'fastify';
import pg from 'pg';

const OUTBOX_QUEUE = 'bench.baseline-outbox';
const amqp = await amqplib.connect(process.env['AMQP_URL']!);
const confirms = await amqp.createConfirmChannel();
await confirms.assertQueue(OUTBOX_QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
type OutboxRow = { id: string; type: string; payload: string };
let pending: OutboxRow[] = [];
let flushing: Promise<void> | null = null;
/** After the commit: publish what was written, then mark the batch published (single-flight, batched). */
function published(row: OutboxRow): void {
  pending.push(row);
  if (!flushing)
    flushing = (async () => {
      while (pending.length) {
        const batch = pending;
        pending = [];
        for (const r of batch)
          confirms.sendToQueue(OUTBOX_QUEUE, Buffer.from(r.payload), {
            persistent: true,
            messageId: r.id,
            type: r.type,
          });
        await confirms.waitForConfirms();
        await pool.query('update bench_outbox set published_at = now() where id = any($1::uuid[])', [
          batch.map((r) => r.id),
        ]);
      }
    })().finally(() => (flushing = null));
}

const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 10 });
await pool.query(`create table if not exists bench_payments (id uuid primary key, user_id text not null, amount bigint not null, currency char(3) not null, status text not null, created_at timestamptz not null default now());
  create table if not exists bench_events (id uuid primary key, provider_event_id text not null unique, event_type text not null, payload text not null, received_at timestamptz not null default now());
  create table if not exists bench_outbox (id uuid primary key, type text not null, payload jsonb not null, created_at timestamptz not null default now(), published_at timestamptz);
  truncate bench_payments, bench_events, bench_outbox;`);
const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
app.post('/payment', async (req) => {
  const body = req.body as { userId?: string; amount?: number };
  const id = randomUUID();
  const c = await pool.connect();
  try {
    await c.query('begin');
    await c.query('insert into bench_payments (id, user_id, amount, currency, status) values ($1, $2, $3, $4, $5)', [
      id,
      body.userId ?? 'u',
      body.amount ?? 999,
      'USD',
      'created',
    ]);
    const row = { id: randomUUID(), type: 'payment.created', payload: JSON.stringify({ id, ...body }) };
    await c.query('insert into bench_outbox (id, type, payload) values ($1, $2, $3)', [row.id, row.type, row.payload]);
    await c.query('commit');
    published(row);
  } catch (err) {
    await c.query('rollback');
    throw err;
  } finally {
    c.release();
  }
  return { id };
});
// The bare checkout of the issue's table: verify the JWT (HS256, by hand), one Auth call, insert
// payment + outbox in one transaction, one order call to the same PayPal stand-in (token cached).
const AUTH = process.env['AUTH_SERVICE_URL'];
const PAYPAL = process.env['PAYPAL_API_BASE'];
const SECRET = process.env['JWT_SECRET'] ?? '';
let paypalToken: string | null = null;
async function paypalAuth(): Promise<string> {
  if (paypalToken) return paypalToken;
  const res = await fetch(`${PAYPAL}/v1/oauth2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${process.env['PAYPAL_CLIENT_ID']}:${process.env['PAYPAL_CLIENT_SECRET']}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  paypalToken = ((await res.json()) as { access_token: string }).access_token;
  return paypalToken;
}
app.post('/checkout', async (req, reply) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const [h, p, sig] = token.split('.');
  const expected = createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url');
  if (!sig || sig !== expected) return reply.status(401).send({});
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { sub: string; exp: number };
  if (claims.exp < Date.now() / 1000) return reply.status(401).send({});
  const roles = await fetch(`${AUTH}/api/v1/users/${encodeURIComponent(claims.sub)}/roles`, {
    headers: { authorization: `Bearer ${process.env['AUTH_SERVICE_TOKEN']}` },
  });
  await roles.arrayBuffer();
  const id = randomUUID();
  const c = await pool.connect();
  try {
    await c.query('begin');
    await c.query('insert into bench_payments (id, user_id, amount, currency, status) values ($1, $2, $3, $4, $5)', [
      id,
      claims.sub,
      999,
      'USD',
      'created',
    ]);
    const row = { id: randomUUID(), type: 'payment.created', payload: JSON.stringify({ id }) };
    await c.query('insert into bench_outbox (id, type, payload) values ($1, $2, $3)', [row.id, row.type, row.payload]);
    await c.query('commit');
    published(row);
  } catch (err) {
    await c.query('rollback');
    throw err;
  } finally {
    c.release();
  }
  const order = await fetch(`${PAYPAL}/v2/checkout/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await paypalAuth()}`,
      'content-type': 'application/json',
      'paypal-request-id': `${id}:create`,
      prefer: 'return=representation',
    },
    body: JSON.stringify({
      intent: 'CAPTURE',
      purchase_units: [{ custom_id: id, amount: { currency_code: 'USD', value: '9.99' } }],
      payment_source: {
        paypal: { experience_context: { return_url: 'http://x/r', cancel_url: 'http://x/c', user_action: 'PAY_NOW' } },
      },
    }),
  });
  const o = (await order.json()) as { id: string };
  return reply.status(201).send({ paymentId: id, orderId: o.id });
});

// The bare webhook ingest of the issue's table: one verify call to the same PayPal stand-in (the raw
// body as webhook_event), then the event and an outbox row in one transaction.
const HEADERS = ['auth-algo', 'cert-url', 'transmission-id', 'transmission-sig', 'transmission-time'];
app.register(async (raw) => {
  raw.removeContentTypeParser('application/json');
  raw.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  raw.post('/webhook', webhook);
});
async function webhook(req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) {
  const raw = req.body as string;
  const h = Object.fromEntries(HEADERS.map((k) => [k.replace('-', '_'), String(req.headers[`paypal-${k}`] ?? '')]));
  const verify = await fetch(`${PAYPAL}/v1/notifications/verify-webhook-signature`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await paypalAuth()}`, 'content-type': 'application/json' },
    body: `{"auth_algo":${JSON.stringify(h['auth_algo'])},"cert_url":${JSON.stringify(h['cert_url'])},"transmission_id":${JSON.stringify(h['transmission_id'])},"transmission_sig":${JSON.stringify(h['transmission_sig'])},"transmission_time":${JSON.stringify(h['transmission_time'])},"webhook_id":${JSON.stringify(process.env['PAYPAL_WEBHOOK_ID'])},"webhook_event":${raw}}`,
  });
  if (((await verify.json()) as { verification_status: string }).verification_status !== 'SUCCESS')
    return reply.status(401).send({});
  const event = JSON.parse(raw) as { id: string; event_type: string };
  const c = await pool.connect();
  try {
    await c.query('begin');
    const row = await c.query(
      'insert into bench_events (id, provider_event_id, event_type, payload) values ($1, $2, $3, $4) on conflict (provider_event_id) do nothing returning id',
      [randomUUID(), event.id, event.event_type, raw],
    );
    const message = row.rowCount
      ? { id: randomUUID(), type: 'provider.event_received', payload: JSON.stringify({ id: row.rows[0].id }) }
      : null;
    if (message)
      await c.query('insert into bench_outbox (id, type, payload) values ($1, $2, $3)', [
        message.id,
        message.type,
        message.payload,
      ]);
    await c.query('commit');
    if (message) published(message);
  } catch (err) {
    await c.query('rollback');
    throw err;
  } finally {
    c.release();
  }
  return { status: 'accepted' };
}

await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1' });
process.stdout.write('baseline ready\n');
process.on(
  'SIGTERM',
  () =>
    void app
      .close()
      .then(() => amqp.close())
      .then(() => pool.end())
      .then(() => process.exit(0)),
);
