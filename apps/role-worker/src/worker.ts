import { RoleChangeRequested, RoleGranted, RoleRevoked } from '@billing/contracts';
import type { AuthClient } from '@billing/auth-client';
import { lockKeys, settleEndedGrantsMany } from '@billing/billing-core';
import { decideRoleAction } from '@billing/domain';
import {
  Consumer,
  enqueueEach,
  ROLE_RETRY_DELAYS_MS,
  WORK_QUEUES,
  type StepHandlerMap,
  type WorkQueueSpec,
} from '@billing/messaging';
import { declarePublishedTopology, type Runtime } from '@billing/runtime';
import { sql, type Kysely } from 'kysely';
import { Gatherer, SessionLocks, type Database, type GroupWindow } from '@billing/db';

export const ROLE_MAX_ATTEMPTS = ROLE_RETRY_DELAYS_MS.length + Math.ceil((24 * 3_600_000) / 60_000) + 1;

export const roleQueue: WorkQueueSpec = WORK_QUEUES.role;

/** Runs the functions given one key one after another, in the order given; different keys run side by side. */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<void>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export interface Worker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const contracts = [RoleChangeRequested] as const;
const MAX_ROUNDS = 5;
/** How long a change waits for another replica's claim on its user and role before it is retried later. */
const CLAIM_WAIT_MS = 60_000;

/** What should be changed while the Auth service was being called: the transaction rolls back and the change goes round again. */
class ChangedMeanwhile extends Error {}

/** A change made at the Auth service (or found not needed), to be recorded. */
interface RoleRecord {
  userId: string;
  role: string;
  source: 'subscription' | 'manual';
  reason: string;
  forceRevoke: boolean;
  /** Whether the user holds the role at the Auth service now (null: not known, nothing was done). */
  heldNow: boolean | null;
  /** When what should be was read. */
  at: Date;
  /** What was done at the Auth service, in order. */
  done: ('grant' | 'revoke')[];
}

/**
 * The role-worker: applies role changes at the Auth service one at a time per user and role,
 * evaluating docs/auth.md's rule when the change is applied (not when it was queued), so a late
 * revoke never undoes a newer grant; `role.granted`/`role.revoked` only for real changes.
 */
export function buildWorker({
  rt,
  auth,
  retryDelaysMs,
}: {
  rt: Runtime;
  auth: AuthClient;
  retryDelaysMs?: readonly number[];
}): Worker {
  /**
   * What our grants say of these users and roles now, in one statement: the live grants, whether
   * the user held the role before us (known per user and role, on each grant a subscription started
   * for it, at checkout or at a plan change to that role: the latest one decides), whether a
   * grant that had ended by the pair's `endedBy` is not yet applied at the Auth service (settled),
   * and whether the role is held there as far as we know without asking (docs/auth.md, one Auth
   * call per change): what our last change made it show, else, when the pair's only grant is a
   * subscription's, what was read at its checkout; null when neither is known.
   */
  const desiredOf = async (db: Kysely<Database>, pairs: readonly { userId: string; role: string; endedBy: Date }[]) => {
    const rows = await sql<{
      i: string;
      n: string;
      held_before: boolean | null;
      unsettled: boolean;
      state_held: boolean | null;
      single_subscription: boolean | null;
    }>`select k.i,
        (select count(*) from role_grants g where g.user_id = k.user_id and g.role = k.role and g.ended_at is null) as n,
        (select g.held_before from role_grants g where g.user_id = k.user_id and g.role = k.role and g.source = 'subscription'
          order by g.started_at desc limit 1) as held_before,
        exists (select 1 from role_grants g where g.user_id = k.user_id and g.role = k.role
          and g.ended_at is not null and g.ended_at <= k.ended_by and g.settled_at is null) as unsettled,
        (select s.held from auth_role_states s where s.user_id = k.user_id and s.role = k.role) as state_held,
        (select count(*) = 1 and bool_and(g.source = 'subscription') from role_grants g
          where g.user_id = k.user_id and g.role = k.role) as single_subscription
      from unnest(${pairs.map((p) => p.userId)}::text[], ${pairs.map((p) => p.role)}::text[],
        ${pairs.map((p) => p.endedBy.toISOString())}::timestamptz[]) with ordinality as k(user_id, role, ended_by, i)`
      .execute(db)
      .then((r) => r.rows);
    const byIndex = new Map(rows.map((r) => [Number(r.i), r]));
    return pairs.map((_, i) => {
      const row = byIndex.get(i + 1)!;
      const heldBeforeUs = row.held_before ?? false;
      return {
        liveGrants: Number(row.n),
        heldBeforeUs,
        unsettled: row.unsettled,
        heldKnown: row.state_held ?? (row.single_subscription ? heldBeforeUs : null),
      };
    });
  };
  type Want = { liveGrants: number; heldBeforeUs: boolean; heldKnown: boolean | null; at: Date };
  type Asked = { userId: string; role: string; resolve: (w: Want) => void; reject: (e: unknown) => void };
  // What should be, read before the Auth call: the questions asked while a read runs share the next statement.
  // Every statement of a change is shared with the others' (the reads here, the group commits):
  // at most two of each at once, fewer on a small pool, so the connections held do not grow with
  // the messages in flight (docs/messages.md) and the prefetch is not capped by the pool.
  const shared = Math.max(1, Math.min(2, Math.floor(rt.consumerConnections / 2)));
  const reads = new Gatherer<Asked>(
    async (asked) => {
      const at = new Date();
      try {
        const wants = await desiredOf(
          rt.db,
          asked.map((a) => ({ ...a, endedBy: at })),
        );
        asked.forEach((a, i) => a.resolve({ ...wants[i]!, at }));
      } catch (err) {
        for (const a of asked) a.reject(err);
      }
    },
    64,
    shared,
  );
  const desired = (userId: string, role: string) =>
    new Promise<Want>((resolve, reject) => reads.add({ userId, role, resolve, reject }));

  /**
   * A user and role claimed by this replica while it changes them (docs/auth.md, one at a time):
   * a session-level advisory lock on a connection of its own, so a crashed replica's claims go
   * with its connection. The claims asked for while one statement runs share the next.
   */
  const claims = new SessionLocks(rt.databaseUrl, rt.service);
  type Claim = { key: string; resolve: (got: boolean) => void; reject: (e: unknown) => void };
  const takes = new Gatherer<Claim>(
    async (asked) => {
      try {
        const got = await claims.tryTake(asked.map((a) => a.key));
        asked.forEach((a, i) => a.resolve(got[i]!));
      } catch (err) {
        for (const a of asked) a.reject(err);
      }
    },
    64,
    1,
  );
  const releases = new Gatherer<Claim>(
    async (asked) => {
      try {
        await claims.release(asked.map((a) => a.key));
        for (const a of asked) a.resolve(true);
      } catch (err) {
        for (const a of asked) a.reject(err);
      }
    },
    64,
    1,
  );
  const claimKey = (userId: string, role: string) => `role-claim:${userId}:${role}`;
  /** Waits while another replica holds the pair (at most CLAIM_WAIT_MS, then the message is retried later). */
  const claim = async (userId: string, role: string): Promise<void> => {
    const key = claimKey(userId, role);
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
      if (await new Promise<boolean>((resolve, reject) => takes.add({ key, resolve, reject }))) return;
      if (Date.now() > deadline)
        throw new Error(`role ${role} of ${userId} is being changed by another role-worker; trying again later`);
      await new Promise((r) => setTimeout(r, pause));
    }
  };
  const unclaim = (userId: string, role: string) =>
    new Promise<boolean>((resolve, reject) => releases.add({ key: claimKey(userId, role), resolve, reject }));

  /**
   * What the Auth service was made to do, recorded by a group of commits at its close, set-based
   * (docs/messages.md, group commit): their user-and-role locks in one statement, what should be in
   * one, then their `role.granted`/`role.revoked` in one INSERT and their ended grants settled in
   * one UPDATE. If what should be changed meanwhile for any of them, the group fails; each is then
   * recorded alone, and the one that changed goes round again.
   */
  const records: GroupWindow<RoleRecord[]> = {
    open: () => [],
    async close(trx, recs) {
      if (recs.length === 0) return;
      await lockKeys(
        trx,
        recs.map((r) => `role:${r.userId}:${r.role}`),
      );
      const now = await desiredOf(
        trx,
        recs.map((r) => ({ userId: r.userId, role: r.role, endedBy: r.at })),
      );
      recs.forEach((r, i) => {
        if (decideRoleAction({ ...now[i]!, forceRevoke: r.forceRevoke, heldNow: r.heldNow ?? false }) !== 'none')
          throw new ChangedMeanwhile();
      });
      // What the Auth service shows now, as far as our changes go: the next change decides from it.
      const known = [
        ...new Map(recs.filter((r) => r.heldNow !== null).map((r) => [`${r.userId}\u0000${r.role}`, r])).values(),
      ];
      if (known.length)
        await sql`insert into auth_role_states (user_id, role, held)
          select * from unnest(${known.map((r) => r.userId)}::text[], ${known.map((r) => r.role)}::text[],
            ${known.map((r) => r.heldNow)}::boolean[])
          on conflict (user_id, role) do update set held = excluded.held, updated_at = now()`.execute(trx);
      await enqueueEach(
        trx,
        recs.flatMap((r) =>
          r.done.map((a) => ({
            contract: a === 'grant' ? RoleGranted : RoleRevoked,
            data: { userId: r.userId, role: r.role, source: r.source, reason: r.reason },
          })),
        ),
      );
      // Every grant that had ended when we read what should be is now applied at the Auth service.
      await settleEndedGrantsMany(
        trx,
        recs.filter((_, i) => now[i]!.unsettled).map((r) => ({ userId: r.userId, role: r.role, endedBy: r.at })),
      );
    },
  };

  // One change at a time per user and role in this process: a change taken while another for the
  // same pair is at the Auth service waits for it to be recorded, then reads what it left.
  const pairs = new KeyedSerial();
  const steps: StepHandlerMap<typeof contracts, RoleRecord[]> = {
    // No connection is held while the Auth service answers (docs/architecture.md, calling the outside world): read what should be,
    // change the Auth service, then record it under the per-user-and-role lock, checking that what
    // should be has not changed meanwhile (else go round again), so a late revoke never undoes a
    // newer grant and concurrent changes converge.
    'role.change.requested': ({ envelope, logger, commit }) =>
      pairs.run(`${envelope.data.userId}\u0000${envelope.data.role}`, async () => {
        const { userId, role, source, reason, forceRevoke } = envelope.data;
        await claim(userId, role);
        try {
          const done: RoleRecord['done'] = [];
          // What this change itself made the Auth service show, for its next round.
          let mine: boolean | null = null;
          for (let round = 1; round <= MAX_ROUNDS; round++) {
            const want = await desired(userId, role);
            // One Auth call (docs/auth.md): a grant is idempotent, a revoke says whether the role was held.
            let heldNow: boolean | null = mine ?? want.heldKnown;
            if (want.liveGrants > 0) {
              const before = heldNow ?? (await auth.getRoles(userId)).includes(role);
              await auth.grantRole(userId, role);
              if (!before) done.push('grant');
              heldNow = mine = true;
            } else if (!want.heldBeforeUs || forceRevoke) {
              if (await auth.revokeRole(userId, role)) done.push('revoke');
              heldNow = mine = false;
            }
            const rec: RoleRecord = { userId, role, source, reason, forceRevoke, heldNow, at: want.at, done };
            const settled = await commit(async (_trx, recs) => {
              recs.push(rec);
            }).then(
              () => true,
              (err: unknown) => {
                if (err instanceof ChangedMeanwhile) return false;
                throw err;
              },
            );
            if (settled) {
              logger.info('role change applied', {
                userId,
                role,
                actions: done,
                liveGrants: want.liveGrants,
                rounds: round,
              });
              return;
            }
          }
          throw new Error(`role ${role} of ${userId} kept changing while it was applied; trying again later`);
        } finally {
          // Handed back once recorded (or failed), for the next change of the pair, here or elsewhere.
          await unclaim(userId, role).catch(() => undefined);
        }
      }),
  };
  const consumer = new Consumer({
    name: 'role-worker',
    broker: rt.broker,
    db: rt.db,
    // No `connections`: what this consumer holds is bounded by `shared` above, not by its prefetch.
    logger: rt.logger,
    metrics: rt.metrics,
    queue: retryDelaysMs ? { ...roleQueue, retryDelaysMs } : roleQueue,
    contracts,
    steps,
    groupCommits: records,
    commitConcurrency: shared,
    maxAttempts: ROLE_MAX_ATTEMPTS,
    // As many as the Auth client's connections, each change one call at a time.
    prefetch: auth.connections,
    setup: declarePublishedTopology,
  });
  return {
    start: () => consumer.start(),
    async stop() {
      await consumer.stop();
      await claims.close();
    },
  };
}
