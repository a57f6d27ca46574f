import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestVhost {
  /** AMQP URL of the fresh vhost. */
  url: string;
  vhost: string;
  drop(): Promise<void>;
}

export function baseAmqpUrl(): string {
  const url = process.env['AMQP_URL'];
  if (!url)
    throw new Error(
      'AMQP_URL is not set: run the tests through `npm test`, which starts RabbitMQ in a container when it is unset',
    );
  return url;
}

function managementUrl(amqp: URL): URL {
  const fromEnv = process.env['RABBITMQ_MANAGEMENT_URL'];
  const u = new URL(fromEnv ?? `http://${amqp.hostname}:15672`);
  if (!u.username) {
    u.username = amqp.username || 'guest';
    u.password = amqp.password || 'guest';
  }
  return u;
}

async function management(amqp: URL, method: string, path: string, body?: unknown): Promise<boolean> {
  const m = managementUrl(amqp);
  const auth = Buffer.from(`${decodeURIComponent(m.username)}:${decodeURIComponent(m.password)}`).toString('base64');
  try {
    const res = await fetch(`${m.protocol}//${m.host}${path}`, {
      method,
      headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    return res.ok || res.status === 404;
  } catch {
    return false;
  }
}

/**
 * A fresh RabbitMQ vhost for one test file, through the management API when it answers, else
 * `rabbitmqctl`. The shared broker is never stopped.
 */
export async function createTestVhost(): Promise<TestVhost> {
  const base = new URL(baseAmqpUrl());
  const vhost = `test-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const user = decodeURIComponent(base.username || 'guest');
  const viaApi =
    (await management(base, 'PUT', `/api/vhosts/${vhost}`, {})) &&
    (await management(base, 'PUT', `/api/permissions/${vhost}/${encodeURIComponent(user)}`, {
      configure: '.*',
      write: '.*',
      read: '.*',
    }));
  if (!viaApi) {
    await run('rabbitmqctl', ['add_vhost', vhost]);
    await run('rabbitmqctl', ['set_permissions', '-p', vhost, user, '.*', '.*', '.*']);
  }
  const url = new URL(base.toString());
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    url: url.toString(),
    vhost,
    async drop() {
      if (viaApi && (await management(base, 'DELETE', `/api/vhosts/${vhost}`))) return;
      await run('rabbitmqctl', ['delete_vhost', vhost]).catch(() => undefined);
    },
  };
}
