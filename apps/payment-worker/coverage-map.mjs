import { readdirSync } from 'node:fs';

// Coverage is claimed by the in-process tests only: a test that spawns the app as a real process
// checks its contract (health, metrics, SIGTERM, config), not its branches.
const covered = ['src/handlers', 'src/payments'].flatMap((dir) =>
  readdirSync(new URL(dir, import.meta.url))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${dir}/${f}`),
);
export default (testFile) => (testFile.endsWith('process.test.ts') ? null : covered);
