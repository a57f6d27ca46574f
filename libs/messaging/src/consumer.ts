import { randomUUID } from 'node:crypto';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Static } from 'typebox';
import type { Envelope, MessageContract } from '@billing/contracts';
import {
  Batcher,
  Gatherer,
  isTransientConflict,
  transact,
  withConnectionPriority,
  type Database,
  type GroupWindow,
} from '@billing/db';
import { runWithCorrelation, type Logger, type Metrics } from '@billing/service-kit';
import type { Broker } from './connection.js';
import { InvalidMessageError, publishProperties, validateData, validateEnvelope } from './envelope.js';
import { REPLAY_OF_HEADER } from './dead-letters.js';
import { declareWorkQueue, parkingQueueName, retryQueueName, type WorkQueueSpec } from './topology.js';

export const ATTEMPT_HEADER = 'x-billing-attempts';
/** How many times a transaction (or a message) Postgres ended to break a deadlock is run again in place. */
const TRANSIENT_CONFLICT_RUNS = 4;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const ERROR_HEADER = 'x-billing-last-error';
/** How many times in a row the message found the infrastructure away (its back-off grows with it). */
export const OUTAGE_HEADER = 'x-billing-outages';

export interface HandlerContext<D> {
  /** The consumer's transaction: the message counts as processed only if it commits. */
  trx: Transaction<Database>;
  envelope: Envelope<D>;
  /** Failed attempts before this one. */
  attempt: number;
  logger: Logger;
}

export type Handler<C extends MessageContract> = (ctx: HandlerContext<Static<C['schema']>>) => Promise<void>;

/** One handler per contract type: a missing one is a compile error. */
export type HandlerMap<C extends readonly MessageContract[]> = {
  [K in C[number]['type']]: Handler<Extract<C[number], { type: K }>>;
};

/**
 * A handler that calls the outside world: it holds no transaction while it does
 * (docs/architecture.md, calling the outside world). It reads with short transactions of its own, calls, then records the outcome with
 * `commit`, whose transaction also records the message as processed (a repeat is skipped).
 */
export interface StepContext<D, W = undefined> {
  db: Kysely<Database>;
  envelope: Envelope<D>;
  attempt: number;
  logger: Logger;
  /**
   * Runs `fn` in the transaction that marks the message processed; false if it was already. Call it
   * once, last. With group commit, `window` is what the group's commits share (`groupCommits`).
   */
  commit(fn: (trx: Transaction<Database>, window: W) => Promise<void>): Promise<boolean>;
}
export type StepHandler<C extends MessageContract, W = undefined> = (
  ctx: StepContext<Static<C['schema']>, W>,
) => Promise<void>;
export type StepHandlerMap<C extends readonly MessageContract[], W = undefined> = {
  [K in C[number]['type']]: StepHandler<Extract<C[number], { type: K }>, W>;
};

/**
 * A message applied inside a window's transaction (docs/messages.md, windows): the messages a
 * consumer took at once are applied one after another in one transaction, so they share its
 * BEGIN, COMMIT, the check for repeats and the mark of what was processed. What must happen after
 * the commit (a call to the outside world) is returned, run once the window committed, and the
 * message counts as processed only when it succeeded.
 */
export interface WindowContext<D, W> {
  trx: Transaction<Database>;
  envelope: Envelope<D>;
  attempt: number;
  logger: Logger;
  /** What the window's messages share (say, receipts numbered together at its end). */
  window: W;
}
/** What a message leaves to do after the commit: nothing, or a function run once the window committed. */
export type AfterCommit = (() => Promise<void>) | void;
/**
 * A message whose part is done at the window's close (its messages applied together) knows what
 * it leaves to do after the commit only then: `afterClose` is asked once the window closed.
 */
export interface DecidedAtClose {
  afterClose(): AfterCommit;
}
/** What a window's message leaves to do after the commit, asked once the window closed. */
export function afterClosed(r: AfterCommit | DecidedAtClose): AfterCommit {
  return r && typeof r === 'object' ? r.afterClose() : r;
}
export type WindowApply<D = any, W = any> = (ctx: WindowContext<D, W>) => Promise<AfterCommit | DecidedAtClose>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface WindowOptions<C extends readonly MessageContract[], W> {
  /** The types applied in windows (the others are handled one at a time, as ever). */
  apply: { [K in C[number]['type']]?: WindowApply<Static<Extract<C[number], { type: K }>['schema']>, W> };
  /** A window's shared state, made when its transaction begins. */
  open(): W;
  /** Runs last in the window's transaction (before its commit). */
  close(trx: Transaction<Database>, window: W): Promise<void>;
  /** Messages in one window at most; the prefetch by default. */
  max?: number;
  /**
   * Window transactions run at once, 1 by default: the messages delivered while they run wait
   * for one to commit and form the next window, so windows grow with the load.
   */
  concurrency?: number;
}

export interface ConsumerOptions<C extends readonly MessageContract[], W = undefined> {
  /** Name under which processed message ids are recorded (one per app). */
  name: string;
  broker: Broker;
  db: Kysely<Database>;
  logger: Logger;
  metrics?: Metrics;
  queue: WorkQueueSpec;
  contracts: C;
  /** Exactly one of: handlers run inside the consumer's transaction, or step handlers that commit themselves. */
  handlers?: HandlerMap<C>;
  steps?: StepHandlerMap<C, W>;
  /** Failed attempts after which the message is dead-lettered. */
  maxAttempts: number;
  prefetch?: number;
  /**
   * Database connections this consumer may hold at once (docs/messages.md): the prefetch is capped
   * to it (twice it for step handlers, which hold none while the outside world answers; plus one
   * window's `max` for a consumer applying windows, whose messages share one connection), so every
   * message taken can get a connection, and the rest wait in the broker rather than in a retry loop.
   */
  connections?: number;
  /** Runs extra declarations (exchanges the handlers publish to) with the queue's. */
  setup?: (ch: ConfirmChannel) => Promise<void>;
  /**
   * Group commit for step handlers: their commits asked for within 2 ms of each other share one
   * transaction (docs/messages.md, group commit), which marks their messages processed in one
   * INSERT first and runs the commits of those not processed before; a failing group is redone one
   * commit at a time. A `GroupWindow` is opened at the group's start, handed to each commit, and
   * closed last (its commits' work done set-based there).
   */
  groupCommits?: boolean | GroupWindow<W>;
  /**
   * With group commit: at most this many group transactions at once, the commits asked for
   * meanwhile forming the next group (so groups grow with the load). Unset: groups are the commits
   * asked for within 2 ms of each other.
   */
  commitConcurrency?: number;
  /** Windows: messages of these types taken at once are applied in one transaction. */
  windows?: WindowOptions<C, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Instrumentation: called after the handler's transaction committed, before the ack. */
  onCommitted?: (envelope: Envelope) => Promise<void> | void;
}

type Outcome = 'processed' | 'duplicate' | 'retried' | 'dead_lettered' | 'invalid' | 'requeued';

interface WindowItem {
  msg: ConsumeMessage;
  envelope: Envelope;
  attempts: number;
  resolve: (o: Outcome) => void;
}
type Applied = { duplicate: true } | { duplicate: false; after: (() => Promise<void>) | undefined };

/**
 * The pool had no free connection within its wait: the database is busy, not away. That is load:
 * the caller waits for a connection in-process, and the broker holds the messages not yet taken.
 */
export function isPoolWait(err: unknown): boolean {
  return (err as { message?: string })?.message === 'timeout exceeded when trying to connect';
}

/**
 * The delay before an outage-held message is tried again: doubling from the shortest retry delay
 * with each outage in a row, up to 30 s, rounded down to one of the queue's retry queues.
 */
export function outageDelay(delays: readonly number[], outages: number): number {
  const sorted = [...new Set(delays)].sort((a, b) => a - b);
  const shortest = sorted[0] as number;
  const want = Math.min(shortest * 2 ** Math.min(outages, 20), Math.max(30_000, shortest));
  return sorted.filter((d) => d <= want).pop() ?? shortest;
}

/** Errors that say the infrastructure is away, not that the message is bad: not counted as attempts. */
function isInfrastructureError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001', '08003'].includes(
      e?.code ?? '',
    ) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      e?.message ?? '',
    )
  );
}

/**
 * Consumes a work queue: validates the envelope against its contract, runs the handler in a
 * transaction that also records the message id (a repeat is skipped), acks only after the
 * commit, retries a failure through per-delay retry queues with a growing delay, and after
 * `maxAttempts` writes the message to `dead_letters` for an operator to replay.
 */
interface PendingCommit<W> {
  id: string;
  fn: (trx: Transaction<Database>, window: W) => Promise<void>;
  resolve: (fresh: boolean) => void;
  reject: (err: unknown) => void;
}

export class Consumer<C extends readonly MessageContract[], W = undefined> {
  private readonly channel: ChannelWrapper;
  private readonly byType: Map<string, C[number]>;
  private readonly inFlight = new Set<Promise<void>>();
  /** The channel each message came on: it is settled there or not at all (see `settle`). */
  private readonly origin = new WeakMap<ConsumeMessage, Channel>();
  private consumers: { ch: ConfirmChannel; tags: string[] } | undefined;
  private stopping = false;
  /** Times a commit waited longer than the pool's wait for a connection (load, not failure). */
  poolWaits = 0;
  /** Windows applied whole, and windows that failed and were redone one message at a time. */
  readonly windowStats = { applied: 0, redone: 0, messages: 0 };
  private readonly prefetch: number;
  private readonly commits: { add(item: PendingCommit<W>): void } | undefined;
  private readonly commitWindow: GroupWindow<W>;
  /** Group commits: groups committed whole, groups redone one commit at a time. */
  readonly commitStats = { groups: 0, commits: 0, redone: 0 };
  private pendingWindow: WindowItem[] = [];
  private pendingMarks: { id: string; resolve: (fresh: boolean) => void; reject: (err: unknown) => void }[] = [];
  private marksTimer: NodeJS.Timeout | undefined;
  private pendingSeen: { id: string; resolve: (seen: boolean) => void; reject: (err: unknown) => void }[] = [];
  private seenTimer: NodeJS.Timeout | undefined;
  private windowTimer: NodeJS.Immediate | undefined;
  /** Window transactions running now (docs/messages.md, windows). */
  private windowTransactions = 0;

  constructor(private readonly opts: ConsumerOptions<C, W>) {
    this.byType = new Map(opts.contracts.map((c) => [c.type, c]));
    // A handler holds its connection for the whole message; a step handler only while it reads and
    // records, not while PayPal or the Auth service answers (about half its time, or more).
    const perConnection = opts.steps ? 2 : 1;
    // A window's messages share one connection: a consumer applying windows may hold its windows' worth more.
    const oneWindow = (opts.windows?.max ?? 0) * (opts.windows?.concurrency ?? 1);
    const prefetch = Math.max(
      1,
      Math.min(opts.prefetch ?? 20, (opts.connections ?? Infinity) * perConnection + oneWindow),
    );
    this.prefetch = prefetch;
    this.commitWindow =
      typeof opts.groupCommits === 'object'
        ? opts.groupCommits
        : { open: () => undefined as W, close: async () => undefined };
    if (opts.groupCommits)
      this.commits = opts.commitConcurrency
        ? new Gatherer((items) => this.runCommits(items), 64, opts.commitConcurrency)
        : new Batcher((items) => this.runCommits(items), 32, 2);
    this.channel = opts.broker.channel(`consumer:${opts.queue.queue}`, async (ch: ConfirmChannel) => {
      await declareWorkQueue(ch, opts.queue);
      if (opts.setup) await opts.setup(ch);
      await ch.prefetch(prefetch);
    });
  }

  /** Resolves once the queue is declared and consuming (it waits for the broker if it is away). */
  async start(): Promise<void> {
    try {
      await this.channel.waitForConnect();
      if (this.stopping) return;
      // Consumers are registered on the raw channel, again on every reconnect, so that each
      // message is settled on the channel that delivered it (see `settle`).
      await this.channel.addSetup(async (ch: ConfirmChannel) => {
        if (this.stopping) return;
        const work = await ch.consume(this.opts.queue.queue, (msg) => msg && this.track(msg, ch));
        // What the broker parks (past the quorum queue's delivery limit) is not left out of sight:
        // it goes to dead_letters, where an operator sees and replays it.
        const parked = await ch.consume(
          parkingQueueName(this.opts.queue.queue),
          (msg) => msg && this.trackParked(msg, ch),
        );
        this.consumers = { ch, tags: [work.consumerTag, parked.consumerTag] };
      });
    } catch (err) {
      // SIGTERM while starting: the channel closed under us, and there is nothing to start any more.
      if (this.stopping) return;
      throw err;
    }
  }

  /**
   * Stops taking messages and waits for those in flight, at most `drainMs` (SIGTERM's grace is
   * 10 s, a PayPal call may take longer); what is still running then is handed back: the channel
   * closes, the broker requeues every unacked message, and its uncommitted transaction dies with
   * the process. Every provider call carries an idempotency key, so the redelivery is safe.
   */
  async stop(drainMs = 6_000): Promise<void> {
    this.stopping = true;
    const consumers = this.consumers;
    if (consumers) for (const tag of consumers.tags) await consumers.ch.cancel(tag).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.allSettled([...this.inFlight]).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), drainMs))),
    ]);
    clearTimeout(timer);
    if (!drained)
      this.opts.logger.warn('handing back messages still in flight at shutdown', {
        queue: this.opts.queue.queue,
        inFlight: this.inFlight.size,
      });
    await this.channel.close().catch(() => undefined);
  }

  private track(msg: ConsumeMessage, ch: Channel): void {
    this.origin.set(msg, ch);
    const p = this.onMessage(msg).catch((err: unknown) => {
      this.opts.logger.error('consumer failed to settle a message', { err });
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private trackParked(msg: ConsumeMessage, ch: Channel): void {
    this.origin.set(msg, ch);
    const deliveries =
      Number(msg.properties.headers?.['x-delivery-count'] ?? this.opts.queue.deliveryLimit) ||
      this.opts.queue.deliveryLimit;
    const p = this.deadLetter(
      msg,
      `delivered ${deliveries} times without being settled (the queue's delivery limit): parked by the broker`,
      deliveries,
    )
      .then(
        () => {
          this.opts.logger.error('parked message moved to dead letters', {
            queue: this.opts.queue.queue,
            messageId: msg.properties.messageId,
          });
          this.observe(msg.properties.type ?? 'unknown', 'dead_lettered', process.hrtime.bigint());
        },
        async () => {
          await this.requeue(msg);
        },
      )
      .catch(() => undefined);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async onMessage(msg: ConsumeMessage): Promise<void> {
    const started = process.hrtime.bigint();
    const queue = this.opts.queue.queue;
    let type = msg.properties.type ?? 'unknown';
    const attempts = Number(msg.properties.headers?.[ATTEMPT_HEADER] ?? 0) || 0;
    let outcome: Outcome;
    let envelope: Envelope | undefined;
    try {
      const parsed = validateEnvelope(JSON.parse(msg.content.toString('utf8')));
      type = parsed.type;
      const contract = this.byType.get(parsed.type);
      if (!contract) throw new InvalidMessageError(`no handler for message type "${parsed.type}" on ${queue}`);
      validateData(contract, parsed.data);
      envelope = parsed;
    } catch (err) {
      const reason = err instanceof SyntaxError ? `malformed JSON: ${err.message}` : (err as Error).message;
      this.opts.logger.warn('invalid message dead-lettered', {
        queue,
        messageId: msg.properties.messageId,
        error: reason,
      });
      outcome = await this.deadLetter(msg, reason, attempts).then(
        () => 'invalid' as const,
        () => this.requeue(msg),
      );
      this.observe(type, outcome, started);
      return;
    }
    const env = envelope;
    outcome = this.windowApply(env.type)
      ? await this.inWindow(msg, env, attempts)
      : await runWithCorrelation(env.correlationId, () => this.process(msg, env, attempts));
    this.observe(type, outcome, started);
  }

  private windowApply(type: string): WindowApply | undefined {
    return (this.opts.windows?.apply as Record<string, WindowApply | undefined> | undefined)?.[type];
  }

  /** Joins the window being gathered (the messages delivered in this turn of the event loop). */
  private inWindow(msg: ConsumeMessage, envelope: Envelope, attempts: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      this.pendingWindow.push({ msg, envelope, attempts, resolve });
      this.windowTimer ??= setImmediate(() => this.flushWindows());
    });
  }

  private flushWindows(): void {
    this.windowTimer = undefined;
    const max = this.opts.windows?.max ?? this.prefetch;
    const limit = this.opts.windows?.concurrency ?? 1;
    // While a window's transaction runs, the messages delivered meanwhile wait to form the next one.
    while (this.pendingWindow.length && this.windowTransactions < limit)
      void this.runWindow(this.pendingWindow.splice(0, max));
  }

  /**
   * A window of several: applied in one transaction; if that fails (a bad message, a deadlock with
   * another worker's window), each message is redone alone, through the usual retries.
   */
  private async runWindow(items: WindowItem[]): Promise<void> {
    const alone = (item: WindowItem) =>
      runWithCorrelation(item.envelope.correlationId, () => this.process(item.msg, item.envelope, item.attempts)).then(
        item.resolve,
      );
    if (items.length === 1 || this.stopping) {
      await Promise.all(items.map(alone));
      return;
    }
    let applied: Applied[];
    try {
      applied = await this.applyWindow(items);
    } catch (err) {
      this.windowStats.redone++;
      this.opts.logger.warn('a window failed; its messages are applied one at a time', {
        messages: items.length,
        error: (err as Error).message,
      });
      await Promise.all(items.map(alone));
      return;
    }
    this.windowStats.applied++;
    this.windowStats.messages += items.length;
    await Promise.all(
      items.map((item, i) =>
        runWithCorrelation(item.envelope.correlationId, async () => {
          const a = applied[i]!;
          try {
            if (!a.duplicate && a.after) {
              await a.after();
              await this.markProcessed(item.envelope);
            }
          } catch (err) {
            item.resolve(await this.handleError(item.msg, item.envelope, item.attempts, err));
            return;
          }
          item.resolve(await this.settled(item.msg, item.envelope, a.duplicate));
        }),
      ),
    );
  }

  /**
   * Applies `items` in one transaction: one read for repeats, each message's part in order, the
   * window's close, and one mark for those with nothing left to do after the commit (the others
   * are marked when that is done).
   */
  private async applyWindow(items: { envelope: Envelope; attempts: number }[]): Promise<Applied[]> {
    this.windowTransactions++;
    try {
      return await this.applyWindowNow(items);
    } finally {
      this.windowTransactions--;
      if (this.pendingWindow.length) this.windowTimer ??= setImmediate(() => this.flushWindows());
    }
  }

  private async applyWindowNow(items: { envelope: Envelope; attempts: number }[]): Promise<Applied[]> {
    const { db, name, logger, windows } = this.opts;
    // A deadlock with another window (or worker): the window is run again as a whole, a few
    // milliseconds later (libs/db transact), before its messages are redone one at a time.
    return transact(
      db,
      async (trx) => {
        const ids = [...new Set(items.map((i) => i.envelope.id))];
        const seen = new Set(
          (
            await trx
              .selectFrom('processed_messages')
              .select('message_id')
              .where('consumer', '=', name)
              .where('message_id', 'in', ids)
              .execute()
          ).map((r) => r.message_id),
        );
        const window = windows!.open();
        const out: Applied[] = [];
        const atClose = new Map<number, DecidedAtClose>();
        for (const { envelope, attempts } of items) {
          if (seen.has(envelope.id)) {
            out.push({ duplicate: true });
            continue;
          }
          seen.add(envelope.id); // the same message twice in one window: the second is a repeat
          const apply = this.windowApply(envelope.type)!;
          const after = await runWithCorrelation(envelope.correlationId, () =>
            apply({ trx, envelope, attempt: attempts, logger, window }),
          );
          if (after && typeof after === 'object') atClose.set(out.length, after);
          out.push({ duplicate: false, after: typeof after === 'function' ? after : undefined });
        }
        await windows!.close(trx, window);
        for (const [i, d] of atClose) out[i] = { duplicate: false, after: afterClosed(d) ?? undefined };
        const done = [
          ...new Set(
            items
              .filter((_, i) => out[i]!.duplicate === false && !(out[i] as { after?: unknown }).after)
              .map((i) => i.envelope.id),
          ),
        ];
        if (done.length)
          await trx
            .insertInto('processed_messages')
            .values(done.map((message_id) => ({ consumer: name, message_id })))
            .onConflict((oc) => oc.doNothing())
            .execute();
        return out;
      },
      { attempts: TRANSIENT_CONFLICT_RUNS + 1 },
    );
  }

  /**
   * Marks the message processed and runs `fn` in one transaction; false (and nothing run) for a
   * repeat. A step handler's commit records what the outside world answered: waiting for a
   * connection never sends it back to ask again, it waits here until one is free.
   */
  private async once(
    envelope: Envelope,
    fn: (trx: Transaction<Database>, window: W) => Promise<void>,
  ): Promise<boolean> {
    for (let pause = 10; ; pause = Math.min(pause * 2, 500)) {
      try {
        return await withConnectionPriority(() => this.onceNow(envelope, fn));
      } catch (err) {
        if (!isPoolWait(err) || this.stopping) throw err;
        this.poolWaits++;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  private onceNow(envelope: Envelope, fn: (trx: Transaction<Database>, window: W) => Promise<void>): Promise<boolean> {
    const commits = this.commits;
    if (!commits) return this.commitAlone(envelope.id, fn);
    return new Promise<boolean>((resolve, reject) => commits.add({ id: envelope.id, fn, resolve, reject }));
  }

  /** One commit in a transaction of its own: the mark, then (unless a repeat) `fn` and the window's close. */
  private commitAlone(id: string, fn: (trx: Transaction<Database>, window: W) => Promise<void>): Promise<boolean> {
    return this.opts.db.transaction().execute(async (trx) => {
      const fresh = await trx
        .insertInto('processed_messages')
        .values({ consumer: this.opts.name, message_id: id })
        .onConflict((oc) => oc.doNothing())
        .returning('message_id')
        .executeTakeFirst();
      if (!fresh) return false;
      const w = this.commitWindow.open();
      await fn(trx, w);
      await this.commitWindow.close(trx, w);
      return true;
    });
  }

  /**
   * A group of commits in one transaction: one INSERT marks their messages processed, the commits
   * of those not processed before run in order, the window closes. If that fails, each commit is
   * redone alone and only its own failure reaches its handler.
   */
  private async runCommits(items: PendingCommit<W>[]): Promise<void> {
    if (items.length > 1) {
      try {
        const fresh = await withConnectionPriority(() =>
          this.opts.db.transaction().execute(async (trx) => {
            const marked = new Set(
              (
                await trx
                  .insertInto('processed_messages')
                  .values(
                    [...new Set(items.map((i) => i.id))].map((message_id) => ({
                      consumer: this.opts.name,
                      message_id,
                    })),
                  )
                  .onConflict((oc) => oc.doNothing())
                  .returning('message_id')
                  .execute()
              ).map((r) => r.message_id),
            );
            const w = this.commitWindow.open();
            const out: boolean[] = [];
            for (const item of items) {
              const f = marked.delete(item.id); // the same message twice: the second is a repeat
              out.push(f);
              if (f) await item.fn(trx, w);
            }
            await this.commitWindow.close(trx, w);
            return out;
          }),
        );
        this.commitStats.groups++;
        this.commitStats.commits += items.length;
        items.forEach((item, i) => item.resolve(fresh[i]!));
        return;
      } catch {
        this.commitStats.redone++;
      }
    }
    await Promise.all(
      items.map((item) =>
        withConnectionPriority(() => this.commitAlone(item.id, item.fn)).then(item.resolve, item.reject),
      ),
    );
  }

  /** Whether a message was processed: one SELECT for the questions asked within 2 ms of each other. */
  private wasProcessed(id: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pendingSeen.push({ id, resolve, reject });
      this.seenTimer ??= setTimeout(() => void this.flushSeen(), 2);
    });
  }

  private async flushSeen(): Promise<void> {
    this.seenTimer = undefined;
    const asks = this.pendingSeen.splice(0);
    try {
      const seen = new Set(
        (
          await this.opts.db
            .selectFrom('processed_messages')
            .select('message_id')
            .where('consumer', '=', this.opts.name)
            .where('message_id', 'in', [...new Set(asks.map((a) => a.id))])
            .execute()
        ).map((r) => r.message_id),
      );
      for (const a of asks) a.resolve(seen.has(a.id));
    } catch (err) {
      for (const a of asks) a.reject(err);
    }
  }

  /**
   * `once` with nothing else to write: one INSERT, no transaction around it, shared by the marks
   * asked for within 2 ms of each other (one multi-row INSERT for all).
   */
  private markProcessed(envelope: Envelope): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pendingMarks.push({ id: envelope.id, resolve, reject });
      this.marksTimer ??= setTimeout(() => void this.flushMarks(), 2);
    });
  }

  private async flushMarks(): Promise<void> {
    this.marksTimer = undefined;
    const marks = this.pendingMarks.splice(0);
    try {
      const fresh = new Set(
        (
          await withConnectionPriority(() =>
            this.opts.db
              .insertInto('processed_messages')
              .values(
                [...new Set(marks.map((m) => m.id))].map((message_id) => ({ consumer: this.opts.name, message_id })),
              )
              .onConflict((oc) => oc.doNothing())
              .returning('message_id')
              .execute(),
          )
        ).map((r) => r.message_id),
      );
      for (const m of marks) {
        m.resolve(fresh.has(m.id));
        fresh.delete(m.id); // the same id twice: the second is a repeat
      }
    } catch (err) {
      for (const m of marks) m.reject(err);
    }
  }

  private async run(envelope: Envelope, attempts: number): Promise<boolean> {
    const { db, logger } = this.opts;
    if (this.windowApply(envelope.type)) {
      // A window of one.
      const [a] = await this.applyWindow([{ envelope, attempts }]);
      if (a!.duplicate) return false;
      if (a!.after) {
        await a!.after();
        return this.markProcessed(envelope);
      }
      return true;
    }
    if (this.opts.steps) {
      const step = (this.opts.steps as Record<string, StepHandler<MessageContract, W>>)[envelope.type] as StepHandler<
        MessageContract,
        W
      >;
      if (await this.wasProcessed(envelope.id)) return false;
      let committed: boolean | null = null;
      await step({
        db,
        envelope,
        attempt: attempts,
        logger,
        commit: async (fn) => {
          if (committed !== null) throw new Error(`${envelope.type}: commit called twice`);
          committed = await this.once(envelope, fn);
          return committed;
        },
      });
      // Nothing committed by the handler: the message is marked processed by one statement alone.
      return committed ?? (await this.markProcessed(envelope));
    }
    const handler = (this.opts.handlers as Record<string, Handler<MessageContract>>)[
      envelope.type
    ] as Handler<MessageContract>;
    return this.once(envelope, (trx) => handler({ trx, envelope, attempt: attempts, logger }));
  }

  private async process(msg: ConsumeMessage, envelope: Envelope, attempts: number): Promise<Outcome> {
    let duplicate = false;
    try {
      for (let pause = 10, conflicts = 0; ; ) {
        try {
          duplicate = !(await this.run(envelope, attempts));
          break;
        } catch (err) {
          if (this.stopping) throw err;
          // Postgres ended a transaction to break a deadlock: nothing of it was kept, and the other
          // side went on; run again here, its attempts unused (docs/guarantees.md, deadlocks).
          if (isTransientConflict(err) && ++conflicts <= TRANSIENT_CONFLICT_RUNS) {
            await new Promise((r) => setTimeout(r, 5 * conflicts + Math.random() * 10));
            continue;
          }
          // A read before the commit found no free connection: load. The message stays taken
          // (the prefetch keeps the rest in the broker) and runs again here, its attempts unused.
          if (!isPoolWait(err)) throw err;
          this.poolWaits++;
          await new Promise((r) => setTimeout(r, pause));
          pause = Math.min(pause * 2, 500);
        }
      }
    } catch (err) {
      return this.handleError(msg, envelope, attempts, err);
    }
    return this.settled(msg, envelope, duplicate);
  }

  /** A message done (or found done before): acked. */
  private async settled(msg: ConsumeMessage, envelope: Envelope, duplicate: boolean): Promise<Outcome> {
    if (!duplicate) await this.opts.onCommitted?.(envelope);
    this.settle(msg, 'ack');
    if (duplicate) this.opts.logger.info('duplicate message skipped', { messageId: envelope.id, type: envelope.type });
    return duplicate ? 'duplicate' : 'processed';
  }

  /** A message that failed: handed back at shutdown, held through an outage, or retried later. */
  private async handleError(msg: ConsumeMessage, envelope: Envelope, attempts: number, err: unknown): Promise<Outcome> {
    if (this.stopping) return this.requeue(msg);
    if (isInfrastructureError(err)) {
      this.opts.logger.warn('infrastructure unavailable: the message waits without using an attempt', {
        messageId: envelope.id,
        type: envelope.type,
        error: (err as Error).message,
      });
      return this.waitForInfrastructure(msg, envelope, attempts);
    }
    return this.fail(msg, envelope, attempts + 1, err as Error);
  }

  private async fail(msg: ConsumeMessage, envelope: Envelope, attempts: number, err: Error): Promise<Outcome> {
    const { logger, maxAttempts, queue } = this.opts;
    const error = err.message || String(err);
    if (attempts >= maxAttempts) {
      logger.error('message dead-lettered after its last attempt', {
        messageId: envelope.id,
        type: envelope.type,
        attempts,
        error,
      });
      return this.deadLetter(msg, error, attempts).then(
        () => 'dead_lettered' as const,
        () => this.requeue(msg),
      );
    }
    const delays = queue.retryDelaysMs;
    const delay = delays[Math.min(attempts - 1, delays.length - 1)] as number;
    logger.warn('message failed; retrying later', {
      messageId: envelope.id,
      type: envelope.type,
      attempts,
      delayMs: delay,
      error,
    });
    try {
      await this.channel.publish(
        '',
        retryQueueName(queue.queue, delay),
        msg.content,
        publishProperties(envelope, {
          ...msg.properties.headers,
          [ATTEMPT_HEADER]: attempts,
          [ERROR_HEADER]: error.slice(0, 500),
          [OUTAGE_HEADER]: 0,
        }),
      );
      this.settle(msg, 'ack');
      return 'retried';
    } catch {
      return this.requeue(msg);
    }
  }

  /**
   * An outage is not the message's fault: it goes round a retry queue with its attempt count
   * unchanged, rather than back to the work queue, where each return would count towards the
   * broker's delivery limit and end in the parking queue. Each outage in a row doubles its wait
   * (`outageDelay`), so a long outage is not a storm of retries.
   */
  private async waitForInfrastructure(msg: ConsumeMessage, envelope: Envelope, attempts: number): Promise<Outcome> {
    const outages = Number(msg.properties.headers?.[OUTAGE_HEADER] ?? 0) || 0;
    const delay = outageDelay(this.opts.queue.retryDelaysMs, outages);
    try {
      await this.channel.publish(
        '',
        retryQueueName(this.opts.queue.queue, delay),
        msg.content,
        publishProperties(envelope, {
          ...msg.properties.headers,
          [ATTEMPT_HEADER]: attempts,
          [OUTAGE_HEADER]: outages + 1,
        }),
      );
      this.settle(msg, 'ack');
      return 'requeued';
    } catch {
      return this.requeue(msg);
    }
  }

  private async deadLetter(msg: ConsumeMessage, error: string, attempts: number): Promise<void> {
    const body = msg.content.toString('utf8');
    // A replay that fails again updates the dead letter it came from: one row per message.
    const replayOf = msg.properties.headers?.[REPLAY_OF_HEADER];
    if (typeof replayOf === 'string' && UUID.test(replayOf)) {
      const updated = await this.opts.db
        .updateTable('dead_letters')
        .set({ error: error.slice(0, 4000), attempts, died_again_at: sql`now()`, body })
        .where('id', '=', replayOf)
        .where('queue', '=', this.opts.queue.queue)
        .executeTakeFirst();
      if (updated.numUpdatedRows > 0n) {
        this.settle(msg, 'ack');
        return;
      }
    }
    await this.opts.db
      .insertInto('dead_letters')
      .values({
        id: randomUUID(),
        queue: this.opts.queue.queue,
        message_id: msg.properties.messageId ?? null,
        type: msg.properties.type ?? null,
        exchange: msg.fields.exchange,
        routing_key: msg.fields.routingKey,
        body,
        headers: JSON.stringify(msg.properties.headers ?? {}),
        error: error.slice(0, 4000),
        attempts,
      })
      .execute();
    this.settle(msg, 'ack');
  }

  private async requeue(msg: ConsumeMessage): Promise<Outcome> {
    await new Promise((r) => setTimeout(r, this.stopping ? 0 : 1_000));
    this.settle(msg, 'requeue');
    return 'requeued';
  }

  /**
   * Acks (or requeues) a message on the channel that delivered it. Delivery tags restart at 1 on
   * every channel: sent to the channel that replaced a closed one (a dropped connection, the
   * broker's consumer timeout), a late ack would settle another message, which would vanish if
   * its own handler then failed or the worker stopped. If the delivering channel is gone, the
   * broker has already requeued the message and there is nothing to settle.
   */
  private settle(msg: ConsumeMessage, how: 'ack' | 'requeue'): void {
    const ch = this.origin.get(msg);
    try {
      if (how === 'ack') ch?.ack(msg);
      else ch?.nack(msg, false, true);
    } catch {
      // the channel closed: the broker requeued the message when it did
    }
  }

  private observe(type: string, outcome: Outcome, started: bigint): void {
    const labels = { queue: this.opts.queue.queue, type, outcome };
    this.opts.metrics?.messagesConsumed.inc(labels);
    this.opts.metrics?.messageDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
  }
}
