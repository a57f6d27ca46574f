import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './process.js';

const run = promisify(execFile);

export interface RabbitNode {
  /** AMQP URL of the node (guest/guest, default vhost). */
  url: string;
  /** Erlang node name, for `rabbitmqctl -n`. */
  name: string;
  port: number;
  /** `rabbitmqctl` against this node. */
  ctl(...args: string[]): Promise<string>;
  /** Stops the node and removes its files. */
  stop(): Promise<void>;
}

/** Whether this machine can start a RabbitMQ node of its own (Debian's `rabbitmq-server`). */
export async function canStartRabbitNode(): Promise<boolean> {
  try {
    await run('sh', ['-c', 'command -v rabbitmq-server && command -v rabbitmqctl']);
    return true;
  } catch {
    return false;
  }
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/**
 * A private RabbitMQ node on this machine, started by a test that needs a broker configured
 * otherwise than the shared one (a short consumer timeout, say), which it never touches. Its
 * files live in a temporary folder owned by the `rabbitmq` user, as `rabbitmq-server` drops to it.
 * `advanced` is an Erlang term list for the `rabbit` application, e.g. `{consumer_timeout, 2000}`.
 */
export async function startRabbitNode(opts: { advanced?: string[] } = {}): Promise<RabbitNode> {
  const port = await freePort();
  const distPort = await freePort();
  const name = `billing-test-${port}@localhost`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rabbit-node-'));
  for (const d of ['mnesia', 'log']) mkdirSync(path.join(dir, d));
  writeFileSync(path.join(dir, 'rabbitmq.conf'), 'loopback_users = none\n');
  writeFileSync(
    path.join(dir, 'advanced.config'),
    `[{rabbit, [${[`{tcp_listeners, [{"127.0.0.1", ${port}}]}`, ...(opts.advanced ?? [])].join(', ')}]}].\n`,
  );
  writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  try {
    const { stdout } = await run('id', ['-u', 'rabbitmq']);
    const { stdout: gid } = await run('id', ['-g', 'rabbitmq']);
    for (const p of ['', 'mnesia', 'log', 'rabbitmq.conf', 'advanced.config', 'enabled_plugins'])
      chownSync(path.join(dir, p), Number(stdout.trim()), Number(gid.trim()));
  } catch {
    // no rabbitmq user: the server runs as whoever starts it
  }
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: path.join(dir, 'pid'),
  };
  await run('rabbitmq-server', ['-detached'], { env });
  const deadline = Date.now() + 60_000;
  while (!(await listening(port))) {
    if (Date.now() > deadline)
      throw new Error(`RabbitMQ node ${name} did not listen on ${port} within 60 s (${dir}/log)`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const ctl = async (...args: string[]) => (await run('rabbitmqctl', ['-n', name, ...args])).stdout;
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    name,
    port,
    ctl,
    async stop() {
      await ctl('stop').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RabbitCluster {
  nodes: RabbitNode[];
  /** Every node's AMQP URL, comma-separated, as the apps take it (AMQP_URL). */
  urls: string;
  stop(): Promise<void>;
}

/**
 * A RabbitMQ cluster of `size` private nodes on this machine (quorum queues replicate across
 * them): started side by side, then each joins the first. Same Erlang cookie, since every node runs
 * as the same user.
 */
export async function startRabbitCluster(size = 3, opts: { advanced?: string[] } = {}): Promise<RabbitCluster> {
  const nodes = await Promise.all(Array.from({ length: size }, () => startRabbitNode(opts)));
  const [first, ...rest] = nodes;
  try {
    for (const n of rest) {
      await n.ctl('stop_app');
      await n.ctl('join_cluster', first!.name);
      await n.ctl('start_app');
    }
    const status = await first!.ctl('cluster_status', '--formatter', 'json');
    const running = (JSON.parse(status) as { running_nodes?: string[] }).running_nodes ?? [];
    if (running.length !== size) throw new Error(`cluster has ${running.length} running nodes, wanted ${size}`);
  } catch (err) {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    throw err;
  }
  return {
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    async stop() {
      await Promise.allSettled(nodes.map((n) => n.stop()));
    },
  };
}
