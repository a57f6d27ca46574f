import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Ports this process handed out already (a port is never handed out twice by one test process). */
const handedOut = new Set<number>();

/**
 * A port free now for a server the test starts, drawn at random below Linux's ephemeral range
 * (32768–60999): a port the kernel picked (`listen(0)`) is an ephemeral one, which an outgoing
 * connection (to Postgres, RabbitMQ, a stand-in) could take before the server binds it, and a
 * test of another file running alongside could be handed the same one.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const srv = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!free) continue;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    handedOut.add(port);
    return port;
  }
}

export interface Spawned {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts a TypeScript entry point of the repository as one real child process (`node --import
 * tsx`, not the tsx CLI, which would put a second process in between: a SIGKILL must reach the app).
 */
export function spawnTs(
  entry: string,
  env: Record<string, string | undefined>,
  opts: { echo?: boolean } = {},
): Spawned {
  return spawnNode(['--import', 'tsx', path.resolve(REPO_ROOT, entry)], env, opts);
}

function spawnNode(args: string[], env: Record<string, string | undefined>, { echo = false } = {}): Spawned {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'], ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (b: Buffer) => {
    out += b.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    if (echo) process.stderr.write(b);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    child,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

let newestSource: number | undefined;
/** The newest modification time of anything the apps' build is made of (their sources, the lockfile). */
function newestSourceMtime(): number {
  if (newestSource !== undefined) return newestSource;
  let newest = statSync(path.join(REPO_ROOT, 'package-lock.json')).mtimeMs;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  // What the apps and stand-ins are built from (tools/build/build.mjs bundles our libs in).
  const dirs = ['apps', 'libs'].flatMap((top) =>
    readdirSync(path.join(REPO_ROOT, top)).map((project) => path.join(REPO_ROOT, top, project, 'src')),
  );
  for (const src of [
    ...dirs,
    ...['paypal-sandbox', 'auth-stand-in'].map((t) => path.join(REPO_ROOT, 'tools', t, 'src')),
  ])
    if (existsSync(src)) walk(src);
  newestSource = newest;
  return newest;
}

/**
 * Node's arguments to run an entry point of the repository: an app, a stand-in or a CLI
 * (`apps/<app>/src/main.ts`, `tools/<stand-in>/src/main.ts`, `libs/db/src/cli/<cli>.ts`) as
 * production runs it (`node dist/<name>/main.js`) from the build the test run made
 * (tools/build/for-tests.mjs, tap's `before`, into the project's dist/), or from its sources through
 * tsx when there is no build newer than every source.
 */
export function nodeArgsFor(entry: string): string[] {
  const name =
    /^(?:apps|tools)\/([a-z-]+)\/src\/main\.ts$/.exec(entry)?.[1] ??
    /^libs\/db\/src\/cli\/([a-z-]+)\.ts$/.exec(entry)?.[1];
  const stamp = path.join(process.cwd(), 'dist', 'built-at');
  const built = name && path.join(process.cwd(), 'dist', name, 'main.js');
  if (built && existsSync(built) && existsSync(stamp) && statSync(stamp).mtimeMs > newestSourceMtime())
    return ['--enable-source-maps', built]; // as the Dockerfile runs them
  return ['--import', 'tsx', path.resolve(REPO_ROOT, entry)];
}

/** An app or stand-in as one real child process, from the build when there is a fresh one (`nodeArgsFor`). */
export function spawnApp(
  entry: string,
  env: Record<string, string | undefined>,
  opts: { echo?: boolean } = {},
): Spawned {
  return spawnNode(nodeArgsFor(entry), env, opts);
}

/** Every variable any app needs, pointed at test infrastructure (docs/processes.md: apps ignore what they do not use). */
export function appEnv(overrides: Record<string, string | undefined>): Record<string, string | undefined> {
  return {
    JWT_SECRET: 'test-jwt-secret-0123456789abcdefghij',
    AUTH_SERVICE_URL: 'http://127.0.0.1:9',
    AUTH_SERVICE_TOKEN: 'test-service-token',
    PAYPAL_API_BASE: 'http://127.0.0.1:9',
    PAYPAL_CLIENT_ID: 'test-client-id',
    PAYPAL_CLIENT_SECRET: 'test-client-secret',
    PAYPAL_WEBHOOK_ID: 'WH-TEST',
    LOG_LEVEL: 'warn',
    ...overrides,
  };
}

/** Polls an HTTP URL until it answers `status`. */
export async function waitForHttp(url: string, status = 200, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === status) return res;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
