import { readFile } from 'node:fs/promises';
import { importCatalog } from '../catalog.js';
import { createDb } from '../connection.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: npm run catalog:import -- <plans.json>\n');
  process.exit(2);
}
let entries: unknown;
try {
  entries = JSON.parse(await readFile(file, 'utf8'));
} catch (err) {
  process.stderr.write(`catalog: cannot read ${file}: ${(err as Error).message}\n`);
  process.exit(1);
}
const db = createDb(process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/billing', {
  max: 1,
  applicationName: 'catalog-import',
});
try {
  const r = await importCatalog(db, entries);
  process.stdout.write(`catalog: ${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged\n`);
} catch (err) {
  process.stderr.write(`catalog: nothing changed:\n${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
