import {
  Kysely,
  PostgresDialect,
  sql,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  type Transaction,
  type TransactionSettings,
} from 'kysely';
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
  /**
   * Called once a write to `outbox` is committed through this pool (at the COMMIT of its
   * transaction, or after a single statement outside one): the process's relay publishes it at
   * once (docs/messages.md, outbox). No NOTIFY wakes the relays of every other process.
   */
  onOutboxCommitted?: () => void;
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

const WRITES_OUTBOX = /\binsert\s+into\s+"?outbox"?\s*\(/i;

/** A connection that notes whether its transaction wrote to `outbox`. */
class WatchedConnection implements DatabaseConnection {
  inTransaction = false;
  wroteOutbox = false;
  constructor(
    readonly inner: DatabaseConnection,
    private readonly onOutboxCommitted: () => void,
  ) {}
  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.inner.executeQuery<R>(query);
    if (WRITES_OUTBOX.test(query.sql)) {
      if (this.inTransaction) this.wroteOutbox = true;
      else this.onOutboxCommitted(); // a single statement commits on its own
    }
    return result;
  }
  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/** The Postgres driver, telling `onOutboxCommitted` when a transaction that wrote to `outbox` commits. */
class OutboxWatchingDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly onOutboxCommitted: () => void,
  ) {}
  init() {
    return this.inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    return new WatchedConnection(await this.inner.acquireConnection(), this.onOutboxCommitted);
  }
  async beginTransaction(c: DatabaseConnection, settings: TransactionSettings) {
    const w = c as WatchedConnection;
    await this.inner.beginTransaction(w.inner, settings);
    w.inTransaction = true;
    w.wroteOutbox = false;
  }
  async commitTransaction(c: DatabaseConnection) {
    const w = c as WatchedConnection;
    try {
      await this.inner.commitTransaction(w.inner);
      if (w.wroteOutbox) this.onOutboxCommitted();
    } finally {
      w.inTransaction = false;
      w.wroteOutbox = false;
    }
  }
  async rollbackTransaction(c: DatabaseConnection) {
    const w = c as WatchedConnection;
    try {
      await this.inner.rollbackTransaction(w.inner);
    } finally {
      w.inTransaction = false;
      w.wroteOutbox = false;
    }
  }
  savepoint(c: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]) {
    return this.inner.savepoint!((c as WatchedConnection).inner, name, compile);
  }
  rollbackToSavepoint(c: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]) {
    return this.inner.rollbackToSavepoint!((c as WatchedConnection).inner, name, compile);
  }
  releaseSavepoint(c: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]) {
    return this.inner.releaseSavepoint!((c as WatchedConnection).inner, name, compile);
  }
  releaseConnection(c: DatabaseConnection) {
    return this.inner.releaseConnection((c as WatchedConnection).inner);
  }
  destroy() {
    return this.inner.destroy();
  }
}

class OutboxWatchingDialect extends PostgresDialect {
  constructor(
    config: ConstructorParameters<typeof PostgresDialect>[0],
    private readonly onOutboxCommitted: () => void,
  ) {
    super(config);
  }
  override createDriver(): Driver {
    return new OutboxWatchingDriver(super.createDriver(), this.onOutboxCommitted);
  }
}

export function createDb(url: string, options: DbOptions = {}): Db {
  const pool = createPool(url, options);
  const hook = options.onOutboxCommitted;
  const dialect = hook ? new OutboxWatchingDialect({ pool }, hook) : new PostgresDialect({ pool });
  return new Kysely<Database>({ dialect });
}

/** Readiness: one round trip. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function pingDb(db: Kysely<any>): Promise<boolean> {
  await sql`select 1`.execute(db);
  return true;
}
