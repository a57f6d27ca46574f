// The bare payment-worker of the table: consume a quorum queue (prefetch 16, as the
// payment-worker), one UPDATE per message through a pg Pool of 10, then ack.
import amqplib from 'amqplib';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 10 });
await pool.query(`create table if not exists bench_completions (id uuid primary key, status text not null)`);
const conn = await amqplib.connect(process.env['AMQP_URL']!);
const ch = await conn.createChannel();
await ch.assertQueue('bench.raw-completions', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
await ch.prefetch(16);
await ch.consume('bench.raw-completions', (msg) => {
  if (!msg) return;
  const { id } = JSON.parse(msg.content.toString()) as { id: string };
  pool.query(`update bench_completions set status = 'completed' where id = $1`, [id]).then(
    () => ch.ack(msg),
    () => ch.nack(msg),
  );
});
process.stdout.write('baseline consumer ready\n');
process.on('SIGTERM', () => void conn.close().then(() => pool.end().then(() => process.exit(0))));
