import { sql, type Transaction } from 'kysely';
import type { Database } from '@billing/db';

/** A transaction-scoped advisory lock on a text key: serialises work on one user, or one user and role. */
export async function lockKey(trx: Transaction<Database>, key: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
}
