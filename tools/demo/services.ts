// What `npm start` needs before anything else: a reachable PostgreSQL and RabbitMQ. A local one
// that is down is started with this machine's own tools where they are installed (as .ci/run does);
// otherwise one line per missing service says how to get it, and nothing else runs.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

function reachable(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const installed = async (cmd: string) =>
  run('sh', ['-c', `command -v ${cmd}`]).then(
    () => true,
    () => false,
  );

interface Service {
  name: string;
  url: string;
  defaultPort: number;
  /** Starts a local one with this machine's tools, if they are installed. */
  startLocal: () => Promise<boolean>;
  howToGet: string;
}

export async function ensureServices(databaseUrl: string, amqpUrl: string): Promise<void> {
  const services: Service[] = [
    {
      name: 'PostgreSQL',
      url: databaseUrl,
      defaultPort: 5432,
      startLocal: async () => {
        if (!(await installed('pg_ctlcluster'))) return false;
        const version = readdirSync('/etc/postgresql').sort().at(-1);
        if (!version) return false;
        await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']).catch(() => undefined);
        return true;
      },
      howToGet:
        'install PostgreSQL (e.g. apt-get install postgresql) or run `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15`, or set DATABASE_URL',
    },
    {
      name: 'RabbitMQ',
      url: amqpUrl,
      defaultPort: 5672,
      startLocal: async () => {
        if (!(await installed('rabbitmq-server'))) return false;
        await run('rabbitmq-server', ['-detached']).catch(() => undefined);
        return true;
      },
      howToGet:
        'install RabbitMQ (e.g. apt-get install rabbitmq-server) or run `docker run -d -p 5672:5672 rabbitmq:3.13`, or set AMQP_URL',
    },
  ];
  const missing: string[] = [];
  for (const s of services) {
    const u = new URL(s.url.split(',')[0]!.trim()); // a cluster's first node stands for it
    const host = u.hostname || '127.0.0.1';
    const port = Number(u.port || s.defaultPort);
    if (await reachable(host, port)) continue;
    // Only this machine's own service, on its usual port, is ours to start.
    const local = ['127.0.0.1', 'localhost', '::1'].includes(host) && port === s.defaultPort;
    if (local && (await s.startLocal())) {
      process.stdout.write(`${s.name} was not running on ${host}:${port}: starting it\n`);
      const deadline = Date.now() + 60_000;
      while (!(await reachable(host, port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1_000));
      if (await reachable(host, port)) continue;
    }
    missing.push(`${s.name} is not reachable at ${host}:${port}: ${s.howToGet}`);
  }
  if (missing.length) {
    for (const line of missing) process.stderr.write(`npm start: ${line}\n`);
    process.exit(1);
  }
}
