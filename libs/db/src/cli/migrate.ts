import { createDb } from '../connection.js';
import { migrateToLatest } from '../migrator.js';

const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/billing';
const db = createDb(url, { max: 1, applicationName: 'migrate' });
try {
  const results = await migrateToLatest(db);
  for (const r of results)
    process.stdout.write(`${r.status === 'Success' ? 'applied' : r.status}: ${r.migrationName}\n`);
  if (results.length === 0) process.stdout.write('nothing to apply: the database is up to date\n');
} catch (err) {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
