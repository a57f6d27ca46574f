import { Agent, request, type Dispatcher } from 'undici';

/** The Auth service is unreachable, timed out or answered 5xx: try again later. */
export class AuthUnavailableError extends Error {
  override readonly name = 'AuthUnavailableError';
}

/** The Auth service refused the call (4xx): retrying the same call will not help. */
export class AuthRefusedError extends Error {
  override readonly name = 'AuthRefusedError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface AuthClientOptions {
  baseUrl: string;
  serviceToken: string;
  timeoutMs?: number;
}

/** What an Auth service call answered: the status and the body, read at most once. */
interface Answer {
  status: number;
  ok: boolean;
  json(): Promise<unknown>;
  /** Reads and drops the body (the connection goes back to the pool). */
  drop(): Promise<void>;
}

/**
 * The calls docs/auth.md allows, with `Authorization: Bearer $AUTH_SERVICE_TOKEN`. Over undici's
 * `request` with a keep-alive pool of its own: the role-worker makes two calls per change, and the
 * WHATWG `fetch` wrapper around the same client cost about a third of its CPU time more per call
 * (streams, an AbortSignal and a Response per call).
 */
export class AuthClient {
  /** Calls this client keeps open at once (its pool's connections): a caller's bound on calls in flight. */
  readonly connections = 64;
  private readonly base: string;
  private readonly dispatcher: Agent;
  constructor(private readonly opts: AuthClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.dispatcher = new Agent({ connections: this.connections, keepAliveTimeout: 10_000 });
  }

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Answer> {
    // A precise bound on the whole call (undici's own timeouts tick at about a second).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.opts.timeoutMs ?? 5_000);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.base}${path}`, {
        method,
        dispatcher: this.dispatcher,
        headers: {
          authorization: `Bearer ${this.opts.serviceToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: abort.signal,
      });
    } catch (err) {
      clearTimeout(timer);
      const why = abort.signal.aborted ? `timed out after ${this.opts.timeoutMs ?? 5_000} ms` : (err as Error).message;
      throw new AuthUnavailableError(`Auth service ${method} ${path}: ${why}`);
    }
    const status = res.statusCode;
    const drop = () =>
      res.body
        .dump()
        .catch(() => undefined)
        .finally(() => clearTimeout(timer));
    if (status >= 500) {
      await drop();
      throw new AuthUnavailableError(`Auth service ${method} ${path}: HTTP ${status}`);
    }
    return {
      status,
      ok: status >= 200 && status < 300,
      json: () =>
        res.body
          .json()
          .catch((err: unknown) => {
            throw new AuthUnavailableError(`Auth service ${method} ${path}: ${(err as Error).message}`);
          })
          .finally(() => clearTimeout(timer)),
      drop,
    };
  }

  /** Closes the pool's connections. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  async getRoles(userId: string): Promise<string[]> {
    const res = await this.call('GET', `/api/v1/users/${encodeURIComponent(userId)}/roles`);
    if (res.status === 404) {
      await res.drop();
      return [];
    }
    if (!res.ok) {
      await res.drop();
      throw new AuthRefusedError(res.status, `Auth service refused to read roles: HTTP ${res.status}`);
    }
    const body = (await res.json()) as { roles?: unknown };
    return Array.isArray(body.roles) ? body.roles.filter((r): r is string => typeof r === 'string') : [];
  }

  /** Granting a role the user already has is fine. */
  async grantRole(userId: string, role: string): Promise<void> {
    const res = await this.call('POST', `/api/v1/users/${encodeURIComponent(userId)}/roles`, { role });
    await res.drop();
    if (!res.ok) throw new AuthRefusedError(res.status, `Auth service refused to grant ${role}: HTTP ${res.status}`);
  }

  /** 404 (the user lacks the role) is fine too. Whether the user held it: true on a 2xx, false on the 404. */
  async revokeRole(userId: string, role: string): Promise<boolean> {
    const res = await this.call(
      'DELETE',
      `/api/v1/users/${encodeURIComponent(userId)}/roles/${encodeURIComponent(role)}`,
    );
    await res.drop();
    if (!res.ok && res.status !== 404)
      throw new AuthRefusedError(res.status, `Auth service refused to revoke ${role}: HTTP ${res.status}`);
    return res.ok;
  }

  async login(login: string, password: string): Promise<string | null> {
    const res = await this.call('POST', '/api/v1/auth/login', { login, password });
    if (res.status === 401) {
      await res.drop();
      return null;
    }
    if (!res.ok) {
      await res.drop();
      throw new AuthRefusedError(res.status, `Auth service refused the sign-in: HTTP ${res.status}`);
    }
    const body = (await res.json()) as { access_token?: unknown };
    return typeof body.access_token === 'string' ? body.access_token : null;
  }
}
