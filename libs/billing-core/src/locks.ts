import { sql, type Transaction } from 'kysely';
import type { Database } from '@billing/db';

/** A transaction-scoped advisory lock on a text key: serialises work on one user, or one user and role. */
export async function lockKey(trx: Transaction<Database>, key: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
}

/**
 * `lockKey` for many keys in one statement, taken in the order of their hashes (the same order in
 * every process, so two transactions locking overlapping sets never deadlock on them). Postgres
 * evaluates the volatile lock function in the select list after the ORDER BY.
 */
export async function lockKeys(trx: Transaction<Database>, keys: readonly string[]): Promise<void> {
  const distinct = [...new Set(keys)];
  if (distinct.length === 0) return;
  if (distinct.length === 1) return lockKey(trx, distinct[0]!);
  await sql`select pg_advisory_xact_lock(h) from (select distinct hashtextextended(k, 0) as h from unnest(${distinct}::text[]) as u(k)) s order by h`.execute(
    trx,
  );
}
