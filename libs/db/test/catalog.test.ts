import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { nodeArgsFor } from '@billing/testing';
import { importCatalog } from '../src/catalog.js';
import { createMigratedTestDb } from '../src/testing.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const tdb = await createMigratedTestDb();
t.teardown(() => tdb.drop());
const dir = await mkdtemp(path.join(tmpdir(), 'catalog-'));

async function importFile(content: unknown) {
  const file = path.join(dir, `${Math.random()}.json`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return run(process.execPath, [...nodeArgsFor('libs/db/src/cli/catalog-import.ts'), file], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: tdb.url },
  }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

/**
 * The import itself, in this process (what the command runs after reading its file): the rules
 * past the command's own (trials, dunning schedules) without a process each.
 */
async function importEntries(entries: unknown) {
  return importCatalog(tdb.db, entries).then(
    (r) => ({ code: 0, out: `${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged` }),
    (e: Error) => ({ code: 1, out: e.message }),
  );
}

t.test(
  'npm run catalog:import creates or updates by id; twice changes nothing; a bad file changes nothing',
  async (t) => {
    const demo = JSON.parse(
      await (await import('node:fs/promises')).readFile(path.join(root, 'tools/demo/plans.json'), 'utf8'),
    );
    const first = await importFile(demo);
    t.equal(first.code, 0, first.out);
    t.match(first.out, /5 created, 0 updated, 0 unchanged/);
    const second = await importFile(demo);
    t.match(second.out, /0 created, 0 updated, 5 unchanged/);
    const before = await tdb.db.selectFrom('plans').selectAll().orderBy('id').execute();
    const bad = await importFile([
      { ...demo[0], amount: 12.5 },
      { ...demo[1], id: 'Bad Id', currency: 'XXX' },
    ]);
    t.not(bad.code, 0);
    t.match(bad.out, /entry 0 \(pro-monthly\): amount must be a positive integer/);
    t.match(bad.out, /entry 1 \(Bad Id\): id must be a slug/);
    t.match(bad.out, /currency must be one PayPal supports/);
    t.same(await tdb.db.selectFrom('plans').selectAll().orderBy('id').execute(), before, 'nothing changed');
    const notJson = await importFile('[{');
    t.not(notJson.code, 0);
    const changed = await importEntries([{ ...demo[0], amount: 1299 }]);
    t.match(changed.out, /0 created, 1 updated/);
    t.equal(
      (await tdb.db.selectFrom('plans').select('amount').where('id', '=', 'pro-monthly').executeTakeFirstOrThrow())
        .amount,
      1299,
    );
    // A trial (docs/api.md, free trials): kept, changed, dropped; a malformed one refused.
    const trial = demo.find((p: { trialPeriod?: string }) => p.trialPeriod);
    t.equal(
      (await tdb.db.selectFrom('plans').select('trial_period').where('id', '=', trial.id).executeTakeFirstOrThrow())
        .trial_period,
      'P14D',
    );
    const badTrial = await importEntries([{ ...trial, trialPeriod: '14 days' }]);
    t.not(badTrial.code, 0);
    t.match(badTrial.out, /trialPeriod must be null or one positive integer unit/);
    t.match((await importEntries([{ ...trial, trialPeriod: 'P7D' }])).out, /0 created, 1 updated/);
    const { trialPeriod: _none, ...withoutTrial } = trial;
    t.match((await importEntries([withoutTrial])).out, /0 created, 1 updated/, 'no trialPeriod: the trial is dropped');
    t.match((await importEntries([{ ...trial, trialPeriod: null }])).out, /0 created, 0 updated, 1 unchanged/);

    // A dunning schedule (docs/scheduler.md): kept, unchanged the second time; malformed ones refused.
    const schedule = ['P1D', 'P3D', 'P1W'];
    t.match(
      (await importEntries([{ ...trial, trialPeriod: null, dunningSchedule: schedule }])).out,
      /0 created, 1 updated/,
    );
    t.same(
      (await tdb.db.selectFrom('plans').select('dunning_schedule').where('id', '=', trial.id).executeTakeFirstOrThrow())
        .dunning_schedule,
      schedule,
    );
    t.match(
      (await importEntries([{ ...trial, trialPeriod: null, dunningSchedule: schedule }])).out,
      /0 created, 0 updated, 1 unchanged/,
    );
    // The malformed schedules in one file (one process): each entry refused by name, nothing changed.
    const kept = await tdb.db.selectFrom('plans').selectAll().orderBy('id').execute();
    const badSchedules = [[], ['P3D', 'P1D'], ['P1D', 'three days'], Array(11).fill('P1D'), 'P1D'];
    const refused = await importEntries(
      badSchedules.map((bad, i) => ({ ...trial, id: `${trial.id}-${i}`, dunningSchedule: bad })),
    );
    t.not(refused.code, 0);
    badSchedules.forEach((bad, i) =>
      t.match(
        refused.out,
        new RegExp(`entry ${i} \\(${trial.id}-${i}\\): dunningSchedule must be null or 1 to 10 positive integer units`),
        JSON.stringify(bad),
      ),
    );
    t.same(await tdb.db.selectFrom('plans').selectAll().orderBy('id').execute(), kept, 'nothing changed');
  },
);
