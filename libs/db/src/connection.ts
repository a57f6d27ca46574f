import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

const INT8 = 20;
const NUMERIC = 1700;

/**
 * Money columns are bigint in Postgres and stay far below 2^53 (docs/api.md caps amounts at 10^9),
 * so they are read as JS numbers. The parser is set on this pool only, not globally.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => (v === null ? null : Number(v));
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export interface DbOptions {
  max?: number;
  applicationName?: string;
  statementTimeoutMs?: number;
}

export function createPool(
  url: string,
  { max = 10, applicationName = 'billing', statementTimeoutMs = 30_000 }: DbOptions = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: applicationName,
    types,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    // No transaction waits on the network (issue 8): one idle this long belongs to a stuck or paused
    // process (SIGSTOP, a debugger), and Postgres ends it so its row locks stop blocking the others.
    idle_in_transaction_session_timeout: 15_000,
  });
  // A client losing its connection must not crash the process: an idle one is replaced by the
  // pool, a busy one fails its query (which the caller sees) and is discarded on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export function createDb(url: string, options: DbOptions = {}): Db {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPool(url, options) }) });
}

/** Readiness: one round trip. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function pingDb(db: Kysely<any>): Promise<boolean> {
  await sql`select 1`.execute(db);
  return true;
}
