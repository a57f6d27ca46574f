import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './process.js';

const run = promisify(execFile);

export interface PgNode {
  port: number;
  dir: string;
  /** `pg_ctl` on this node's data directory. */
  ctl(...args: string[]): Promise<string>;
}

export interface PgCluster {
  primary: PgNode;
  replica: PgNode;
  /** `host:port,host:port` (the primary first), for a URL of several hosts. */
  hosts: string;
  /** The primary's own URL for `database`, as user postgres (trust). */
  primaryUrl(database: string): string;
  /** Stops both servers (immediately) and removes their files. */
  stop(): Promise<void>;
}

/** The directory of this machine's PostgreSQL server programs (Debian: /usr/lib/postgresql/<v>/bin), or none. */
export function pgBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

/**
 * A primary and a streaming replica of this machine's PostgreSQL, on private ports and in a
 * temporary folder owned by `postgres` (the server refuses to run as root); the shared server is
 * never touched. Commits wait for the replica's flush (`synchronous_standby_names = '*'`,
 * `synchronous_commit = on`), so a promotion loses no acknowledged commit (docs/guarantees.md,
 * Postgres failover). The replica drops that setting for itself, so it takes writes alone once promoted.
 */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL server programs not found under /usr/lib/postgresql');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-cluster-'));
  const [p1, p2] = [await freePort(), await freePort()];
  const asPostgres = async (prog: string, args: string[]) => {
    const root = process.getuid?.() === 0;
    const { stdout } = await run(
      root ? 'runuser' : path.join(bin, prog),
      root ? ['-u', 'postgres', '--', path.join(bin, prog), ...args] : args,
      {
        cwd: dir,
        timeout: 60_000,
      },
    );
    return stdout;
  };
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const node = (name: string, port: number): PgNode => {
    const data = path.join(dir, name);
    return {
      port,
      dir: data,
      ctl: (...args) => asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, `${name}.log`), ...args]),
    };
  };
  const primary = node('primary', p1);
  const replica = node('replica', p2);
  // A test file that dies (a throw at its top level skips its teardowns) must not leave servers running.
  const leftBehind = () => {
    for (const n of [replica, primary]) {
      const args = [path.join(bin, 'pg_ctl'), '-D', n.dir, '-m', 'immediate', 'stop'];
      try {
        if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' });
        else execFileSync(args[0]!, args.slice(1), { stdio: 'ignore' });
      } catch {
        // not running
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', leftBehind);
  await asPostgres('initdb', ['-D', primary.dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const conf = (d: string, lines: string[]) =>
    appendFileSync(path.join(d, 'postgresql.conf'), `\n${lines.join('\n')}\n`);
  conf(primary.dir, [
    "listen_addresses = '127.0.0.1'",
    `port = ${p1}`,
    `unix_socket_directories = '${dir}'`,
    'wal_level = replica',
    'max_wal_senders = 5',
    'hot_standby = on',
    'max_connections = 300',
    "synchronous_standby_names = '*'",
    'synchronous_commit = on',
    'fsync = off',
  ]);
  writeFileSync(
    path.join(primary.dir, 'pg_hba.conf'),
    'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n',
  );
  await primary.ctl('-w', 'start');
  await asPostgres('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(p1),
    '-U',
    'postgres',
    '-D',
    replica.dir,
    '-R',
    '-X',
    'stream',
    '--no-sync',
  ]);
  conf(replica.dir, [`port = ${p2}`, "synchronous_standby_names = ''"]);
  await replica.ctl('-w', 'start');
  // Streaming, and the primary's commits waiting for it.
  for (const deadline = Date.now() + 30_000; ; ) {
    const state = await asPostgres('psql', [
      '-h',
      '127.0.0.1',
      '-p',
      String(p1),
      '-U',
      'postgres',
      '-Atc',
      "select state || ':' || sync_state from pg_stat_replication",
    ]).catch(() => '');
    if (state.trim() === 'streaming:sync') break;
    if (Date.now() > deadline) throw new Error(`the replica is not streaming in sync: ${state.trim() || 'none'}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    primary,
    replica,
    hosts: `127.0.0.1:${p1},127.0.0.1:${p2}`,
    primaryUrl: (database) => `postgres://postgres@127.0.0.1:${p1}/${database}`,
    async stop() {
      process.removeListener('exit', leftBehind);
      for (const n of [replica, primary]) await n.ctl('-m', 'immediate', 'stop').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
