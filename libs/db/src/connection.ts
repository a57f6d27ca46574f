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
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import type { Database } from './database.js';
import { poolHosts } from './hosts.js';

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
  /**
   * Tags every outbox row this pool writes (`outbox.owner`, through the connection setting
   * `billing.outbox_owner`): the relay of that name publishes them without a claim transaction
   * (docs/messages.md). Letters, digits, `.`, `-` and `_` only.
   */
  outboxOwner?: string;
}

export function createPool(
  url: string,
  { max = 10, applicationName = 'billing', statementTimeoutMs = 30_000, outboxOwner }: DbOptions = {},
): pg.Pool {
  if (outboxOwner !== undefined && !/^[\w.-]+$/.test(outboxOwner)) throw new Error(`bad outbox owner: ${outboxOwner}`);
  // DATABASE_URL may name several hosts (docs/guarantees.md, Postgres failover).
  const hosts = poolHosts(url);
  const pool = new pg.Pool({
    ...hosts.options,
    max,
    application_name: applicationName,
    types,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    ...(outboxOwner ? { options: `-c billing.outbox_owner=${outboxOwner}` } : {}),
    // No transaction waits on the network (docs/architecture.md, calling the outside world): one idle this long belongs to a stuck or paused
    // process (SIGSTOP, a debugger), and Postgres ends it so its row locks stop blocking the others.
    idle_in_transaction_session_timeout: 15_000,
  });
  // A client losing its connection must not crash the process: an idle one is replaced by the
  // pool, a busy one fails its query (which the caller sees) and is discarded on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  hosts.retryConnect(pool);
  return pool;
}

/** How long a caller waits for one of the pool's connections before it is told so (as pg-pool words it). */
export const CONNECTION_WAIT_MS = 30_000;
const POOL_WAIT_MESSAGE = 'timeout exceeded when trying to connect';
const urgent = new AsyncLocalStorage<boolean>();

/**
 * Runs `fn` with its connections taken ahead of everyone else's: a handler recording what PayPal
 * answered goes before a new message's reads, so an answer is never lost to a busy pool.
 */
export function withConnectionPriority<T>(fn: () => Promise<T>): Promise<T> {
  return urgent.run(true, fn);
}

/**
 * The pool's connections as permits, handed out first to urgent callers, then in order of arrival.
 * pg-pool's own queue fails a caller after 3 s (its connectionTimeoutMillis, which must stay short
 * for a Postgres that is away); with this gate in front the pool never has waiters, so a busy pool
 * is a wait, not an error. After CONNECTION_WAIT_MS the wait fails with pg-pool's words (a caller
 * that holds a connection and wants another would otherwise wait for ever).
 */
class ConnectionGate {
  private free: number;
  private readonly waiting: { urgent: boolean; grant: () => void }[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0 && this.waiting.length === 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        urgent: urgent.getStore() === true,
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(POOL_WAIT_MESSAGE));
      }, CONNECTION_WAIT_MS);
      if (entry.urgent) {
        const firstNormal = this.waiting.findIndex((w) => !w.urgent);
        this.waiting.splice(firstNormal < 0 ? this.waiting.length : firstNormal, 0, entry);
      } else this.waiting.push(entry);
    });
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.free++;
  }
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

/**
 * The Postgres driver behind the connection gate, telling `onOutboxCommitted` (if given) when a
 * transaction that wrote to `outbox` commits.
 */
class GatedDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly gate: ConnectionGate,
    private readonly onOutboxCommitted: () => void,
  ) {}
  init() {
    return this.inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    await this.gate.acquire();
    try {
      return new WatchedConnection(await this.inner.acquireConnection(), this.onOutboxCommitted);
    } catch (err) {
      this.gate.release();
      throw err;
    }
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
  async releaseConnection(c: DatabaseConnection) {
    try {
      await this.inner.releaseConnection((c as WatchedConnection).inner);
    } finally {
      this.gate.release();
    }
  }
  destroy() {
    return this.inner.destroy();
  }
}

class GatedDialect extends PostgresDialect {
  constructor(
    config: ConstructorParameters<typeof PostgresDialect>[0],
    private readonly gate: ConnectionGate,
    private readonly onOutboxCommitted: () => void,
  ) {
    super(config);
  }
  override createDriver(): Driver {
    return new GatedDriver(super.createDriver(), this.gate, this.onOutboxCommitted);
  }
}

export function createDb(url: string, options: DbOptions = {}): Db {
  const pool = createPool(url, options);
  const gate = new ConnectionGate(options.max ?? 10);
  const dialect = new GatedDialect({ pool }, gate, options.onOutboxCommitted ?? (() => {}));
  return new Kysely<Database>({ dialect });
}

/** Readiness: one round trip. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function pingDb(db: Kysely<any>): Promise<boolean> {
  await sql`select 1`.execute(db);
  return true;
}
