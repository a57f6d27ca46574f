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

/** The calls docs/auth.md allows, with `Authorization: Bearer $AUTH_SERVICE_TOKEN`. */
export class AuthClient {
  private readonly base: string;
  constructor(private readonly opts: AuthClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
  }

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.opts.serviceToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5_000),
      });
    } catch (err) {
      throw new AuthUnavailableError(`Auth service ${method} ${path}: ${(err as Error).message}`);
    }
    if (res.status >= 500) {
      await res.body?.cancel();
      throw new AuthUnavailableError(`Auth service ${method} ${path}: HTTP ${res.status}`);
    }
    return res;
  }

  async getRoles(userId: string): Promise<string[]> {
    const res = await this.call('GET', `/api/v1/users/${encodeURIComponent(userId)}/roles`);
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    if (!res.ok) throw new AuthRefusedError(res.status, `Auth service refused to read roles: HTTP ${res.status}`);
    const body = (await res.json()) as { roles?: unknown };
    return Array.isArray(body.roles) ? body.roles.filter((r): r is string => typeof r === 'string') : [];
  }

  /** Granting a role the user already has is fine. */
  async grantRole(userId: string, role: string): Promise<void> {
    const res = await this.call('POST', `/api/v1/users/${encodeURIComponent(userId)}/roles`, { role });
    await res.body?.cancel();
    if (!res.ok) throw new AuthRefusedError(res.status, `Auth service refused to grant ${role}: HTTP ${res.status}`);
  }

  /** 404 (the user lacks the role) is fine too. */
  async revokeRole(userId: string, role: string): Promise<void> {
    const res = await this.call(
      'DELETE',
      `/api/v1/users/${encodeURIComponent(userId)}/roles/${encodeURIComponent(role)}`,
    );
    await res.body?.cancel();
    if (!res.ok && res.status !== 404)
      throw new AuthRefusedError(res.status, `Auth service refused to revoke ${role}: HTTP ${res.status}`);
  }

  async login(login: string, password: string): Promise<string | null> {
    const res = await this.call('POST', '/api/v1/auth/login', { login, password });
    if (res.status === 401) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) throw new AuthRefusedError(res.status, `Auth service refused the sign-in: HTTP ${res.status}`);
    const body = (await res.json()) as { access_token?: unknown };
    return typeof body.access_token === 'string' ? body.access_token : null;
  }
}
