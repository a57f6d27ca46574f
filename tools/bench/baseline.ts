// BASELINES.md's bare scenarios, measured in the same run as the project: (a) a Fastify GET
// returning a small JSON object, (d') a POST inserting a payment row and an outbox row in one
// transaction through a pg Pool of 10.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 10 });
await pool.query(`create table if not exists bench_payments (id uuid primary key, user_id text not null, amount bigint not null, currency char(3) not null, status text not null, created_at timestamptz not null default now());
  create table if not exists bench_outbox (id uuid primary key, type text not null, payload jsonb not null, created_at timestamptz not null default now(), published_at timestamptz);
  truncate bench_payments, bench_outbox;`);
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
    await c.query('insert into bench_outbox (id, type, payload) values ($1, $2, $3)', [
      randomUUID(),
      'payment.created',
      JSON.stringify({ id, ...body }),
    ]);
    await c.query('commit');
  } catch (err) {
    await c.query('rollback');
    throw err;
  } finally {
    c.release();
  }
  return { id };
});
await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1' });
process.stdout.write('baseline ready\n');
process.on(
  'SIGTERM',
  () =>
    void app
      .close()
      .then(() => pool.end())
      .then(() => process.exit(0)),
);
