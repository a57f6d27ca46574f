import type { Kysely, Transaction } from 'kysely';
import type { Database } from './database.js';

/** Postgres ended the transaction to break a deadlock (40P01) or a serialization conflict (40001). */
export function isTransientConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * A transaction run again when Postgres ends it to break a deadlock or a serialization conflict
 * (docs/guarantees.md, deadlocks): nothing of it was kept, and a handler's transaction calls
 * nothing outside (docs/architecture.md, calling the outside world), so running it again is safe.
 * Up to `attempts` runs, a few milliseconds apart; then the error is the caller's.
 */
export async function transact<T>(
  db: Kysely<Database>,
  fn: (trx: Transaction<Database>) => Promise<T>,
  { attempts = 4 }: { attempts?: number } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(fn);
    } catch (err) {
      if (attempt >= attempts || !isTransientConflict(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 10));
    }
  }
}
