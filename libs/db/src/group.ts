import type { Kysely, Transaction } from 'kysely';
import { withConnectionPriority } from './connection.js';
import type { Database } from './database.js';

/** What the transactions of a group share, made when its transaction begins and closed before it commits. */
export interface GroupWindow<W> {
  open(): W;
  /**
   * Run once every item of a group said what it will touch (`run`'s `prepare`) and before any
   * item runs: locks taken up front, in one order, so that groups side by side never deadlock.
   */
  ready?(trx: Transaction<Database>, window: W): Promise<void>;
  close(trx: Transaction<Database>, window: W): Promise<void>;
}

/**
 * What group commit shares: items asked for within `delayMs` of the first are handed to `run`
 * together, at most `max` at a time; a full batch does not wait for the timer.
 */
export class Batcher<T> {
  private pending: T[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: (items: T[]) => Promise<void>,
    private readonly max: number,
    private readonly delayMs: number,
  ) {}

  add(item: T): void {
    this.pending.push(item);
    if (this.pending.length >= this.max) {
      clearTimeout(this.timer);
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  private flush(): void {
    this.timer = undefined;
    while (this.pending.length) void this.run(this.pending.splice(0, this.max));
  }
}

/**
 * Items added while `concurrency` runs are in progress wait to form the next run (at most `max`), so
 * runs grow with the load; an item added when none runs waits only for the end of this turn of the
 * event loop. `run` must not reject.
 */
export class Gatherer<T> {
  private pending: T[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: T[]) => Promise<void>,
    private readonly max: number,
    private readonly concurrency = 1,
  ) {}

  add(item: T): void {
    this.pending.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.length && this.running < this.concurrency) {
      const items = this.pending.splice(0, this.max);
      this.running++;
      void this.run(items).finally(() => {
        this.running--;
        if (this.pending.length) this.schedule();
      });
    }
  }
}

interface Pending<W> {
  fn: (trx: Transaction<Database>, window: W) => Promise<unknown>;
  prepare: ((window: W) => void) | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for short transactions that record what the outside world answered
 * (docs/messages.md, windows): those asked for within `delayMs` of each other run one after
 * another in one transaction (one BEGIN and COMMIT, and what the window shares, receipts say, is
 * written once at its end). If that transaction fails, each runs again in a transaction of its
 * own, and only its own failure reaches its caller, so a group is never worse than its parts.
 * Each function must have no effect outside the database (it may run twice). They take
 * connections ahead of new work (withConnectionPriority).
 */
export class TransactionGroup<W> {
  private readonly queue: Batcher<Pending<W>>;
  readonly stats = { groups: 0, transactions: 0, redone: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly window: GroupWindow<W>,
    /** The most transactions in one group. */
    max = 32,
    /** How long the first of a group waits for others to join (group commit's usual small delay). */
    delayMs = 2,
  ) {
    this.queue = new Batcher((items) => this.runGroup(items), max, delayMs);
  }

  /** `prepare` says what `fn` will touch (the window's `ready` locks it up front, with the group's others). */
  run<T>(fn: (trx: Transaction<Database>, window: W) => Promise<T>, prepare?: (window: W) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.add({ fn, prepare, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  private async runGroup(items: Pending<W>[]): Promise<void> {
    if (items.length === 1) return this.alone(items[0]!);
    let results: unknown[];
    try {
      results = await withConnectionPriority(() =>
        this.db.transaction().execute(async (trx) => {
          const w = this.window.open();
          for (const item of items) item.prepare?.(w);
          await this.window.ready?.(trx, w);
          const out: unknown[] = [];
          for (const item of items) out.push(await item.fn(trx, w));
          await this.window.close(trx, w);
          return out;
        }),
      );
    } catch {
      this.stats.redone++;
      await Promise.all(items.map((item) => this.alone(item)));
      return;
    }
    this.stats.groups++;
    this.stats.transactions += items.length;
    items.forEach((item, i) => item.resolve(results[i]));
  }

  private async alone(item: Pending<W>): Promise<void> {
    try {
      item.resolve(
        await withConnectionPriority(() =>
          this.db.transaction().execute(async (trx) => {
            // Alone: nothing to lock up front (`prepare` and `ready` order a group's items among themselves).
            const w = this.window.open();
            const out = await item.fn(trx, w);
            await this.window.close(trx, w);
            return out;
          }),
        ),
      );
    } catch (err) {
      item.reject(err);
    }
  }
}
