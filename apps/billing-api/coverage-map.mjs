import { readdirSync } from 'node:fs';

// Coverage is claimed by the in-process tests only (app.inject): a test that spawns the app as a
// real process checks its contract (health, metrics, SIGTERM, config), not its branches.
const covered = ['src', 'src/routes', 'src/routes/subscriptions'].flatMap((dir) =>
  readdirSync(new URL(dir, import.meta.url))
    .filter((f) => f.endsWith('.ts') && f !== 'main.ts')
    .map((f) => `${dir}/${f}`),
);
export default (testFile) => (testFile.endsWith('process.test.ts') ? null : covered);
