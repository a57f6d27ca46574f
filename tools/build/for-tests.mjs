#!/usr/bin/env node
// tap's `before` in the projects whose tests start the whole system (tools/e2e, tools/browser): the
// apps and stand-ins built once per test run into that project's own dist/, which the stacks then
// run as production does (`node dist/<app>/main.js`, libs/testing spawnApp); a build older than
// any source is not used (the stacks run the sources through tsx instead).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const out = path.resolve('dist');
const build = path.join(path.dirname(new URL(import.meta.url).pathname), 'build.mjs');
const r = spawnSync(process.execPath, [build, '--outdir', out], { stdio: ['ignore', 'ignore', 'inherit'] });
if (r.status !== 0) {
  process.stderr.write(`the build for the tests failed (${r.status ?? r.signal}): the stacks will run the sources\n`);
  process.exit(0);
}
writeFileSync(path.join(out, 'built-at'), new Date().toISOString());
