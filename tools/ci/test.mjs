#!/usr/bin/env node
// The one test command (README): typecheck, lint, the formatter's check, docker-compose validation and every
// project's tests, ending with a plain "N passed, N failed" line summed over all projects.
// Tests use DATABASE_URL / AMQP_URL when set; otherwise Postgres and RabbitMQ are started in
// containers through testcontainers (which needs a Docker engine).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
process.chdir(root);
let passed = 0;
let failed = 0;
const failures = [];

/** Runs a command, its output streamed as it comes, or with `quiet` only kept (and printed by the caller). */
function run(cmd, args, { quiet = false, env = process.env, cwd = root } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (stream) => (b) => {
      if (!quiet) stream.write(b);
      out += b.toString();
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** One check; its output printed whole when it ends (two checks run side by side, never interleaved). */
async function check(name, cmd, args, extraEnv = {}, cwd = root) {
  const { code, out } = await run(cmd, args, {
    quiet: true,
    env: { ...process.env, ...extraEnv },
    cwd: path.resolve(root, cwd),
  });
  process.stdout.write(`\n=== ${name}: ${cmd} ${args.join(' ')}\n${out}`);
  if (code === 0) passed += 1;
  else {
    failed += 1;
    failures.push(name);
  }
}

async function startContainers() {
  const { GenericContainer, Wait } = await import('testcontainers');
  const started = [];
  if (!process.env.DATABASE_URL) {
    process.stdout.write('DATABASE_URL is not set: starting PostgreSQL in a container\n');
    const pg = await new GenericContainer('postgres:15-alpine')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    process.env.DATABASE_URL = `postgres://postgres@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`;
    started.push(pg);
  }
  if (!process.env.AMQP_URL) {
    process.stdout.write('AMQP_URL is not set: starting RabbitMQ in a container\n');
    const mq = await new GenericContainer('rabbitmq:3.13-management-alpine')
      .withExposedPorts(5672, 15672)
      .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
      .start();
    process.env.AMQP_URL = `amqp://guest:guest@${mq.getHost()}:${mq.getMappedPort(5672)}`;
    process.env.RABBITMQ_MANAGEMENT_URL = `http://guest:guest@${mq.getHost()}:${mq.getMappedPort(15672)}`;
    started.push(mq);
  }
  return started;
}

const containers = await startContainers();
const started = Date.now();

// The checks are each one process on one core: two at a time, in two sequences of about the same
// length (the typecheck about 15 s, the rest 2-9 s each on this machine).
await Promise.all([
  (async () => {
    await check('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json']);
    await check('format (prettier, 120 columns)', 'npx', ['prettier', '--check', '.']);
  })(),
  (async () => {
    // The buyer's billing page's script runs in the browser: typed against the DOM, on its own.
    await check('typecheck (browser script)', 'npx', ['tsc', '-p', 'apps/billing-api/tsconfig.page.json']);
    // The module-boundary rule reads Nx's project graph and is skipped when none is cached (a fresh clone).
    await check('project graph (for the lint)', 'npx', ['nx', 'show', 'projects']);
    await check('lint', 'npx', ['eslint', '.']);
    if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) {
      // The compose file ships no secret: validation runs with a throwaway one.
      await check('docker-compose config', 'docker-compose', ['config', '-q'], {
        JWT_SECRET: 'compose-validation-only-0123456789abcdef',
        DB_APP_PASSWORD: 'compose-validation-only',
      });
    } else {
      process.stdout.write('\n=== docker-compose is not installed: compose validation skipped (.ci/run installs it)\n');
    }
    // Every project loads its tests through tools/ci/ts-loader.mjs ("!@tapjs/typescript" in its tap
    // plugins): tap rebuilds its Test class once for that plugin list here, not in two projects at once.
    await check('tap build (the plugin list every project shares)', 'npx', ['tap', 'build'], {}, 'libs/domain');
  })(),
]);

const projects = ['libs', 'tools', 'apps'].flatMap((dir) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter(
          (p) =>
            existsSync(path.join(dir, p, 'package.json')) &&
            existsSync(path.join(dir, p, 'test')) &&
            readdirSync(path.join(dir, p, 'test')).some((f) => f.endsWith('.test.ts')),
        )
        .map((p) => path.join(dir, p))
    : [],
);
const times = [];
const notOk = [];
/**
 * Each failed assertion of a project's output with its diagnostics (tap's YAML block under it), so
 * that the end of a long run says what failed without a search through its whole output.
 */
function failedAssertions(label, out) {
  const lines = out.split('\n');
  const found = [];
  lines.forEach((line, i) => {
    if (!/^\s*not ok \d+/.test(line)) return;
    const block = [line];
    // A subtest or a file that failed (its line ends with its time) is named; its own diagnostics
    // only repeat where it began and how it was run.
    if (!/# time=/.test(line) && /^\s*---\s*$/.test(lines[i + 1] ?? '')) {
      for (let j = i + 1; j < lines.length && block.length < 30; j++) {
        block.push(lines[j]);
        if (/^\s*\.\.\.\s*$/.test(lines[j])) break;
      }
    }
    found.push(`${label}:\n${block.join('\n')}`);
  });
  return found;
}
/** One project's tap run; a quiet one's output is printed whole when it ends, so two never interleave. */
async function testProject(project, { quiet, files = [], part = '', args = [] }) {
  const began = Date.now();
  const label = part ? `${project} (${part})` : project;
  if (!quiet) process.stdout.write(`\n=== tests: ${label}\n`);
  const { code, out } = await run('npx', ['tap', '--reporter=tap', ...args, ...files], {
    quiet,
    cwd: path.join(root, project),
  });
  if (quiet) process.stdout.write(`\n=== tests: ${label}\n${out}`);
  // tap's top-level lines name each file with its time: the slowest are listed at the end.
  const timed = [...out.matchAll(/^(?:not )?ok \d+ - (\S+\.test\.ts) # time=([\d.]+)ms/gm)].map((m) => ({
    file: `${project}/${m[1]}`,
    s: Number(m[2]) / 1000,
  }));
  times.push({ project: label, s: (Date.now() - began) / 1000, files: timed });
  notOk.push(...failedAssertions(label, out));
  const summaries = [...out.matchAll(/^# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?[^}]*\}/gm)];
  const last = summaries.at(-1);
  if (!last) {
    failed += 1;
    failures.push(`${label} (no summary)`);
    return;
  }
  const total = Number(last[1]);
  const pass = Number(last[2]);
  passed += pass;
  failed += total - pass;
  if (code !== 0 || total !== pass) failures.push(label);
  if (code !== 0 && total === pass) failed += 1;
}

// The whole-system suite (tools/e2e) comes in two parts. Its files that mostly wait (on short
// billing periods, on retries) run side by side with the other projects, which run two at a time
// (each its own files two at a time): most of their time is starting processes and waiting on
// Postgres and RabbitMQ, not CPU. Its files under test/serial (the overload, the fault schedule,
// failovers, slow peers: they load the machine and time it) run alone, one after another, last.
const E2E = 'tools/e2e';
const pooled = projects.filter((p) => p !== E2E);
// The slowest first (as measured in the run's per-file times), so none of them starts last.
const SLOW_FIRST = ['renewals', 'payment-method', 'faults', 'trials', 'plan-changes', 'free-periods'];
const rank = (f) => (SLOW_FIRST.indexOf(f.replace('.test.ts', '')) + SLOW_FIRST.length + 1) % (SLOW_FIRST.length + 1);
const e2eSideBySide = existsSync(E2E)
  ? readdirSync(path.join(E2E, 'test'))
      .filter((f) => f.endsWith('.test.ts'))
      .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
      .map((f) => `test/${f}`)
  : [];
await Promise.all([
  ...Array.from({ length: 2 }, async () => {
    for (let next = pooled.shift(); next; next = pooled.shift()) await testProject(next, { quiet: true });
  }),
  ...(e2eSideBySide.length
    ? [
        // Three at a time: the pooled projects load the test files through esbuild now (not ts-node)
        // and finish first; these mostly wait on short billing periods.
        testProject(E2E, {
          quiet: true,
          files: e2eSideBySide,
          part: 'side by side with the others',
          args: ['--jobs=3'],
        }),
      ]
    : []),
]);
// Named one by one: tap finds .ts files in a directory only through @tapjs/typescript, which the
// projects leave out (they load TypeScript through tools/ci/ts-loader.mjs).
const e2eAlone = existsSync(path.join(E2E, 'test/serial'))
  ? readdirSync(path.join(E2E, 'test/serial'))
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => `test/serial/${f}`)
  : [];
if (e2eAlone.length) await testProject(E2E, { quiet: false, files: e2eAlone, part: 'alone' });

for (const c of containers) await c.stop();
if (notOk.length) process.stdout.write(`\n=== failed assertions (${notOk.length})\n${notOk.join('\n')}\n`);
process.stdout.write('\n=== time per project (the slowest files of each in brackets)\n');
for (const { project, s: secs, files } of times.sort((a, b) => b.s - a.s)) {
  const slowest = files
    .sort((a, b) => b.s - a.s)
    .slice(0, 3)
    .map((f) => `${path.basename(f.file)} ${Math.round(f.s)} s`)
    .join(', ');
  process.stdout.write(`${String(Math.round(secs)).padStart(5)} s  ${project}${slowest ? `  [${slowest}]` : ''}\n`);
}
process.stdout.write(
  `\nran ${projects.length} projects in ${Math.round((Date.now() - started) / 1000)} s${failures.length ? `; failing: ${failures.join(', ')}` : ''}\n`,
);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 && failures.length === 0 ? 0 : 1);
