import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** The server the tests use: DATABASE_URL when set (the test runner sets it, or starts a container). */
export function baseDatabaseUrl(): string {
  const url = process.env['DATABASE_URL'];
  if (!url)
    throw new Error(
      'DATABASE_URL is not set: run the tests through `npm test`, which starts Postgres in a container when it is unset',
    );
  return url;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A fresh, empty database; `drop()` removes it. The shared server is never stopped. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = baseDatabaseUrl();
  const name = `billing_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: withDatabase(base, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(base, name);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: withDatabase(base, 'postgres') });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
