import { randomUUID } from 'node:crypto';
import type { ChannelWrapper } from 'amqp-connection-manager';
import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import type { Static } from 'typebox';
import type { Envelope, MessageContract } from '@billing/contracts';
import type { Database } from '@billing/db';
import type { Logger, Metrics } from '@billing/service-kit';
import type { Broker } from './connection.js';
import { makeEnvelope, publishProperties } from './envelope.js';

/** Writes a message into the outbox inside the caller's transaction; it is published after commit. */
export async function enqueue<C extends MessageContract>(
  trx: Transaction<Database>,
  contract: C,
  data: Static<C['schema']>,
  correlationId?: string,
): Promise<Envelope<Static<C['schema']>>> {
  const envelope = makeEnvelope(contract, data, correlationId);
  await enqueueEnvelope(trx, contract.exchange, contract.routingKey, envelope);
  return envelope;
}

/** The outbox row of one message. */
const outboxRow = (contract: MessageContract, envelope: Envelope) => ({
  id: randomUUID(),
  exchange: contract.exchange,
  routing_key: contract.routingKey,
  type: envelope.type,
  envelope: JSON.stringify(envelope),
  headers: '{}',
});

/** Many messages of one contract in one multi-row INSERT, in the caller's transaction. */
export async function enqueueMany<C extends MessageContract>(
  trx: Transaction<Database>,
  contract: C,
  data: Static<C['schema']>[],
  correlationId?: string,
): Promise<Envelope<Static<C['schema']>>[]> {
  if (data.length === 0) return [];
  const envelopes = data.map((d) => makeEnvelope(contract, d, correlationId));
  await trx
    .insertInto('outbox')
    .values(envelopes.map((envelope) => outboxRow(contract, envelope)))
    .execute();
  return envelopes;
}

/** Messages of several contracts in one multi-row INSERT, in the order given (the relay publishes them so). */
export async function enqueueEach(
  trx: Transaction<Database>,
  messages: readonly { contract: MessageContract; data: unknown }[],
  correlationId?: string,
): Promise<void> {
  if (messages.length === 0) return;
  await trx
    .insertInto('outbox')
    .values(
      messages.map(({ contract, data }) =>
        outboxRow(contract, makeEnvelope(contract, data as Static<typeof contract.schema>, correlationId)),
      ),
    )
    .execute();
}

export async function enqueueEnvelope(
  trx: Transaction<Database>,
  exchange: string,
  routingKey: string,
  envelope: Envelope,
  headers: Record<string, unknown> = {},
): Promise<void> {
  await trx
    .insertInto('outbox')
    .values({
      id: randomUUID(),
      exchange,
      routing_key: routingKey,
      type: envelope.type,
      envelope: JSON.stringify(envelope),
      headers: JSON.stringify(headers),
    })
    .execute();
  // The relay of this process is woken at the commit (createDb's onOutboxCommitted).
}

/**
 * One statement instead of a transaction: `insert` (which must return `id`) writes its row and, only
 * if it did (an `on conflict do nothing` that skipped writes nothing), the outbox row for
 * `message(id)` goes with it (the process's relay is woken when it returns). A single statement
 * commits atomically on its own: one round trip to Postgres where BEGIN, INSERT, INSERT, COMMIT
 * took four. Returns the id written, or undefined.
 */
export async function insertWithMessage<C extends MessageContract>(
  db: Kysely<Database>,
  insert: (db: Kysely<Database>) => { compile(): { sql: string; parameters: readonly unknown[] } },
  contract: C,
  message: (id: string) => Static<C['schema']>,
  rowId: string,
): Promise<string | undefined> {
  const envelope = makeEnvelope(contract, message(rowId));
  const row = insert(db).compile();
  // The insert's own placeholders ($1..$n) come first; the outbox row's follow.
  const n = row.parameters.length;
  const text =
    `with written as (${row.sql}), queued as (insert into outbox (id, exchange, routing_key, type, envelope, headers) ` +
    `select $${n + 1}::uuid, $${n + 2}::text, $${n + 3}::text, $${n + 4}::text, $${n + 5}::jsonb, '{}'::jsonb from written) ` +
    `select written.id from written`;
  const result = await db.executeQuery(
    CompiledQuery.raw(text, [
      ...row.parameters,
      randomUUID(),
      contract.exchange,
      contract.routingKey,
      envelope.type,
      JSON.stringify(envelope),
    ]),
  );
  return (result.rows[0] as { id: string } | undefined)?.id;
}

export async function outboxBacklog(db: Kysely<Database>): Promise<number> {
  const r = await db
    .selectFrom('outbox')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('published_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export interface RelayOptions {
  db: Kysely<Database>;
  /** Unused since the relay stopped LISTENing; kept so callers need not change. */
  databaseUrl?: string;
  broker: Broker;
  logger: Logger;
  metrics?: Metrics;
  /** Declares what the relay publishes to (run again on every reconnect). */
  setup: (ch: import('amqplib').ConfirmChannel) => Promise<void>;
  batchSize?: number;
  pollMs?: number;
  /**
   * The name the process's pool tags its outbox rows with (createDb's `outboxOwner`): this relay
   * publishes them at once without a claim transaction. Without it, every pass claims.
   */
  owner?: string;
  /** How old another relay's unpublished row must be before this one's poll claims it (its owner died). */
  orphanAfterMs?: number;
}

/** When a row with an owner counts as left by a crashed (or stopped) process (docs/messages.md). */
export const ORPHAN_AFTER_MS = 10_000;

type Row = { id: string; exchange: string; routing_key: string; envelope: unknown; headers: unknown };

/**
 * Publishes committed outbox rows with confirms and marks them, a batch per pass (one UPDATE).
 * Woken in-process when this process commits a write to `outbox` (createDb's `onOutboxCommitted`
 * calls `wake`): the rows its pool tagged with `owner` it reads without a lock or a transaction
 * (only it publishes them, one pass at a time), publishes, and marks. A slow poll claims, with FOR
 * UPDATE SKIP LOCKED, the rows without an owner and those a crashed process left (older than
 * `orphanAfterMs`), so several relays can run side by side (docs/messages.md).
 */
export class OutboxRelay {
  private readonly channel: ChannelWrapper;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private draining: Promise<void> | undefined;
  private again = false;
  private claimWanted = false;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly orphanAfterMs: number;

  constructor(private readonly opts: RelayOptions) {
    this.batchSize = opts.batchSize ?? 200;
    this.pollMs = opts.pollMs ?? 1_000;
    this.orphanAfterMs = opts.orphanAfterMs ?? ORPHAN_AFTER_MS;
    this.channel = opts.broker.channel('outbox-relay', opts.setup, 5_000);
    this.channel.on('connect', () => this.request(true));
  }

  async start(): Promise<void> {
    this.running = true;
    this.opts.metrics?.setOutboxBacklogReader(() => outboxBacklog(this.opts.db));
    const tick = () => {
      if (!this.running) return;
      this.request(true);
      this.timer = setTimeout(tick, this.pollMs);
    };
    tick();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.draining;
    await this.channel.close().catch(() => undefined);
  }

  /** This process committed outbox rows: publish its own until none is left (or the broker is away). */
  wake(): void {
    this.request(false);
  }

  /** Single-flight per relay; `claim` adds a pass over what no live relay publishes. */
  private request(claim: boolean): void {
    if (!this.running) return;
    if (claim || !this.opts.owner) this.claimWanted = true;
    if (this.draining) {
      this.again = true;
      return;
    }
    let settle!: () => void;
    this.draining = new Promise<void>((resolve) => {
      settle = resolve;
    });
    void (async () => {
      // Yield first, so `draining` is set before any of this runs.
      await Promise.resolve();
      const more = () => this.running && this.opts.broker.isConnected();
      try {
        do {
          this.again = false;
          if (this.opts.owner) while (more() && (await this.drainOwn()) === this.batchSize);
          if (this.claimWanted) {
            this.claimWanted = false;
            while (more() && (await this.drainOnce()) === this.batchSize);
          }
        } while (this.again && this.running);
      } catch (err) {
        this.opts.logger.warn('outbox relay pass failed', { error: (err as Error).message });
      } finally {
        this.draining = undefined;
        settle();
      }
    })();
  }

  /**
   * One batch of this process's own rows: read (no lock, no transaction), publish with confirms,
   * mark. Two statements. Returns how many rows were read, 0 if any failed to publish.
   */
  async drainOwn(): Promise<number> {
    const rows = await this.opts.db
      .selectFrom('outbox')
      .select(['id', 'exchange', 'routing_key', 'envelope', 'headers'])
      .where('owner', '=', this.opts.owner!)
      .where('published_at', 'is', null)
      .orderBy('seq')
      .limit(this.batchSize)
      .execute();
    if (rows.length === 0) return 0;
    return this.publishAndMark(this.opts.db, rows);
  }

  /**
   * One claimed batch: the rows without an owner, and those older than `orphanAfterMs` (their
   * owner crashed or stopped before publishing), locked for this pass; publish, mark.
   */
  async drainOnce(): Promise<number> {
    return this.opts.db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('outbox')
        .select(['id', 'exchange', 'routing_key', 'envelope', 'headers'])
        .where('published_at', 'is', null)
        .where((eb) =>
          eb.or([
            eb('owner', 'is', null),
            eb('created_at', '<', sql<Date>`now() - make_interval(secs => ${this.orphanAfterMs / 1000})`),
          ]),
        )
        .orderBy('seq')
        .limit(this.batchSize)
        .forUpdate()
        .skipLocked()
        .execute();
      if (rows.length === 0) return 0;
      return this.publishAndMark(trx, rows);
    });
  }

  private async publishAndMark(db: Kysely<Database>, rows: Row[]): Promise<number> {
    const results = await Promise.allSettled(
      rows.map((r) => {
        const envelope = r.envelope as Envelope;
        return this.channel.publish(
          r.exchange,
          r.routing_key,
          Buffer.from(JSON.stringify(envelope)),
          publishProperties(envelope, r.headers as Record<string, unknown>),
        );
      }),
    );
    const ok = rows.filter((_, i) => results[i]?.status === 'fulfilled').map((r) => r.id);
    const failed = rows.filter((_, i) => results[i]?.status === 'rejected').map((r) => r.id);
    if (ok.length)
      await db
        .updateTable('outbox')
        .set({ published_at: sql`now()` })
        .where('id', 'in', ok)
        .execute();
    if (failed.length) {
      const reason = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error;
      await db
        .updateTable('outbox')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: String(reason?.message ?? reason) }))
        .where('id', 'in', failed)
        .execute();
      this.opts.logger.warn('outbox publish failed; will retry', {
        failed: failed.length,
        error: String(reason?.message ?? reason),
      });
    }
    this.opts.metrics?.outboxPublished.inc(ok.length);
    return failed.length ? 0 : rows.length;
  }
}
