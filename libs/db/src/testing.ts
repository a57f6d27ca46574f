import { createTestDatabase } from '@billing/testing';
import { createDb, type Db } from './connection.js';
import { migrateToLatest } from './migrator.js';

export interface MigratedTestDb {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh database for one test file, migrated (or not), with a Kysely handle. */
export async function createMigratedTestDb({ migrate = true, max = 5 } = {}): Promise<MigratedTestDb> {
  const t = await createTestDatabase();
  const db = createDb(t.url, { max, applicationName: 'test' });
  if (migrate) await migrateToLatest(db);
  return {
    url: t.url,
    db,
    async drop() {
      await db.destroy();
      await t.drop();
    },
  };
}
