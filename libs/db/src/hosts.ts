import pg from 'pg';

// docs/guarantees.md, Postgres failover: DATABASE_URL may name several hosts as libpq does
// (`postgres://u:p@db-0:5432,db-1:5432/billing?target_session_attrs=read-write`). node-postgres
// takes one host only (brianc/node-postgres#1470), so the list is read here and each connection
// is made to one host of it: the last that served first, then the others in order, skipping a
// host that refuses or, with `read-write`, one that accepts only read-only sessions (a standby).

export interface DatabaseHosts {
  /** One URL per host, in the order given, each with the rest of the URL (`target_session_attrs` taken out). */
  urls: string[];
  /** `target_session_attrs=read-write` (or `primary`): a session must accept writes. */
  readWrite: boolean;
}

const URL_SHAPE = /^(postgres(?:ql)?:\/\/)(?:([^@/?]*)@)?([^/?]*)(\/[^?]*)?(?:\?(.*))?$/;

interface Parts {
  scheme: string;
  userinfo: string | undefined;
  hosts: string[];
  path: string;
  params: [string, string][];
}

function parts(url: string): Parts | undefined {
  const m = URL_SHAPE.exec(url);
  if (!m) return undefined;
  return {
    scheme: m[1]!,
    userinfo: m[2],
    hosts: (m[3] ?? '').split(','),
    path: m[4] ?? '',
    params: (m[5] ?? '')
      .split('&')
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      }),
  };
}

function format(p: Parts, hosts = p.hosts): string {
  const q = p.params.map(([k, v]) => `${k}=${v}`).join('&');
  return `${p.scheme}${p.userinfo !== undefined ? `${p.userinfo}@` : ''}${hosts.join(',')}${p.path}${q ? `?${q}` : ''}`;
}

/** The hosts a URL names, one URL each; a URL of one host gives itself. */
export function databaseHosts(url: string): DatabaseHosts {
  const p = parts(url);
  if (!p || p.hosts.length < 2) {
    const attrs = p?.params.find(([k]) => k === 'target_session_attrs')?.[1];
    return { urls: [url], readWrite: attrs === 'read-write' || attrs === 'primary' };
  }
  const attrs = p.params.find(([k]) => k === 'target_session_attrs')?.[1] ?? 'any';
  if (!['any', 'read-write', 'primary'].includes(attrs))
    throw new Error(`DATABASE_URL: target_session_attrs=${attrs} is not supported (any, read-write or primary)`);
  const rest = { ...p, params: p.params.filter(([k]) => k !== 'target_session_attrs') };
  return { urls: p.hosts.map((h) => format(rest, [h])), readWrite: attrs !== 'any' };
}

/** `url` with its user (and password) replaced, whatever hosts it names. */
export function withUser(url: string, user: string, password = ''): string {
  const p = parts(url);
  if (!p) throw new Error('not a postgres:// URL');
  const userinfo = `${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}`;
  return format({ ...p, userinfo });
}

/** `url` naming database `name`, whatever hosts it names. */
export function withDatabaseName(url: string, name: string): string {
  const p = parts(url);
  if (!p) throw new Error('not a postgres:// URL');
  return format({ ...p, path: `/${encodeURIComponent(name)}` });
}

/** The error a caller sees when no host accepts a session of the kind asked: an outage (08001). */
export class NoUsableHostError extends Error {
  readonly code = '08001';
}

/**
 * Which host a process connects to next: the one that served last, moved on when it fails.
 * One per pool (or per client of its own), so every connection of it agrees.
 */
export class HostChoice {
  private current = 0;
  constructor(readonly hosts: DatabaseHosts) {}

  /** The index and URL of the host to try now. */
  next(): { index: number; url: string } {
    return { index: this.current, url: this.hosts.urls[this.current]! };
  }

  /** The host at `index` failed or would not take writes: the next one is tried from now on. */
  failed(index: number): void {
    if (this.current === index) this.current = (index + 1) % this.hosts.urls.length;
  }
}

/** Whether a connected session accepts writes (libpq's read-write test). */
export async function acceptsWrites(client: pg.ClientBase): Promise<boolean> {
  const r = await client.query<{ transaction_read_only: string }>('show transaction_read_only');
  return r.rows[0]?.transaction_read_only === 'off';
}

/**
 * A client of its own (not a pool's) connected to a host of `url` that suits it: each host tried at
 * most once, starting with the one that served last.
 */
export async function connectClient(
  choice: HostChoice,
  config: Omit<pg.ClientConfig, 'connectionString'> = {},
): Promise<pg.Client> {
  let last: unknown;
  for (let tries = 0; tries < choice.hosts.urls.length; tries++) {
    const { index, url } = choice.next();
    const c = new pg.Client({ ...config, connectionString: url });
    c.on('error', () => undefined);
    try {
      await c.connect();
      if (choice.hosts.readWrite && !(await acceptsWrites(c)))
        throw new NoUsableHostError(`${url.replace(/\/\/[^@]*@/, '//')} accepts only read-only sessions`);
      return c;
    } catch (err) {
      last = err;
      choice.failed(index);
      await c.end().catch(() => undefined);
    }
  }
  if (choice.hosts.urls.length === 1) throw last;
  throw new NoUsableHostError(
    `no host of DATABASE_URL accepts ${choice.hosts.readWrite ? 'read-write ' : ''}sessions now: ${(last as Error)?.message ?? last}`,
  );
}

/**
 * The pg.Pool options that make a pool of `url`'s hosts: each new connection goes to the host that
 * served last, is checked for writes (with `read-write`), and moves the choice on when it fails;
 * `retryConnect` then lets a caller's connect try each host once before it fails.
 */
export function poolHosts(url: string): {
  options: Pick<pg.PoolConfig, 'connectionString' | 'Client' | 'onConnect'>;
  retryConnect(pool: pg.Pool): void;
} {
  const hosts = databaseHosts(url);
  if (hosts.urls.length === 1 && !hosts.readWrite)
    return { options: { connectionString: url }, retryConnect: () => undefined };
  const choice = new HostChoice(hosts);
  const chosen = new WeakMap<pg.Client, number>();
  class HostClient extends pg.Client {
    constructor(config: pg.ClientConfig) {
      const { index, url: one } = choice.next();
      super({ ...config, connectionString: one });
      chosen.set(this, index);
    }
  }
  const options = {
    connectionString: hosts.urls[0]!,
    Client: HostClient as unknown as typeof pg.Client,
    async onConnect(client: pg.ClientBase) {
      if (hosts.readWrite && !(await acceptsWrites(client as pg.Client))) {
        choice.failed(chosen.get(client as pg.Client) ?? -1);
        throw new NoUsableHostError('the host accepts only read-only sessions (a standby)');
      }
    },
  };
  return {
    options,
    retryConnect(pool) {
      const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
      const withRetries = async (): Promise<pg.PoolClient> => {
        let last: unknown;
        for (let tries = 0; tries < hosts.urls.length; tries++) {
          const index = choice.next().index;
          try {
            return await connect();
          } catch (err) {
            last = err;
            // Only a host that could not be reached moves the choice on (a read-only one already has);
            // anything else (a wait for the pool, a refused login) is the caller's, on this host.
            if (!isConnectFailure(err)) throw err;
            if (!(err instanceof NoUsableHostError)) choice.failed(index);
          }
        }
        if (last instanceof NoUsableHostError) throw last;
        throw Object.assign(
          new NoUsableHostError(`no host of DATABASE_URL accepts sessions now: ${(last as Error)?.message}`),
          {
            cause: last,
          },
        );
      };
      (pool as unknown as { connect: (cb?: unknown) => unknown }).connect = (cb?: unknown) => {
        if (typeof cb !== 'function') return withRetries();
        withRetries().then(
          (c) =>
            (cb as (e: unknown, c?: pg.PoolClient, done?: (e?: unknown) => void) => void)(undefined, c, (e) =>
              c.release(e as Error),
            ),
          (e) => (cb as (e: unknown) => void)(e),
        );
        return undefined;
      };
    },
  };
}

/** A failure to reach a host at all (not a pool's wait, not a statement's error). */
function isConnectFailure(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    err instanceof NoUsableHostError ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', '57P03', '57P01', '08006', '08001'].includes(
      e?.code ?? '',
    ) ||
    /Connection terminated/i.test(e?.message ?? '')
  );
}
