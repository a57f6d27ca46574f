import type pg from 'pg';
import { connectClient, databaseHosts, HostChoice } from './hosts.js';

/**
 * Session-level advisory locks held on one connection of this process's own (not the pool's):
 * taken with `pg_try_advisory_lock`, released with `pg_advisory_unlock`, and released by Postgres
 * itself when the process or its connection dies, so a crashed holder never blocks the others.
 * A key held is held by the process: taking it again stacks, and each take needs its release.
 */
export class SessionLocks {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;

  private readonly hosts: HostChoice;
  constructor(
    databaseUrl: string,
    private readonly name: string,
  ) {
    this.hosts = new HostChoice(databaseHosts(databaseUrl));
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const c = await connectClient(this.hosts, { application_name: `${this.name}:locks` });
      // A connection lost takes its locks with it: the next take opens a new one.
      const gone = () => {
        if (this.client === c) this.client = undefined;
      };
      c.on('error', gone);
      c.on('end', gone);
      this.client = c;
      return c;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Whether each of `keys` was taken, in one statement. */
  async tryTake(keys: readonly string[]): Promise<boolean[]> {
    const c = await this.connection();
    const r = await c.query<{ got: boolean }>(
      'select pg_try_advisory_lock(hashtextextended(k, 0)) as got from unnest($1::text[]) with ordinality as u(k, i) order by i',
      [keys],
    );
    return r.rows.map((row) => row.got);
  }

  /** Releases `keys` (once each per take), in one statement; nothing to do if the connection is gone. */
  async release(keys: readonly string[]): Promise<void> {
    const c = this.client;
    if (!c || keys.length === 0) return;
    await c.query('select pg_advisory_unlock(hashtextextended(k, 0)) from unnest($1::text[]) as u(k)', [keys]);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
