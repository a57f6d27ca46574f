import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { signJwt, type Signer } from './jwt.js';

export interface AuthUser {
  id: string;
  login: string;
  password: string;
  roles: string[];
}

export interface AuthOptions {
  signer: Signer;
  serviceToken: string;
  issuer?: string;
  audience?: string;
  tokenTtlSec?: number;
  users?: AuthUser[];
}

export const DEMO_USERS: AuthUser[] = [
  { id: 'user-admin', login: 'admin', password: 'admin-password', roles: ['user', 'admin'] },
  { id: 'user-alice', login: 'alice', password: 'alice-password', roles: ['user'] },
  { id: 'user-bob', login: 'bob', password: 'bob-password', roles: ['user'] },
  { id: 'user-carol', login: 'carol', password: 'carol-password', roles: ['user', 'premium'] },
];

interface Call {
  at: string;
  method: string;
  path: string;
  authorized: boolean;
  body: unknown;
  status: number;
  /** Whether the call changed the user's roles (a grant or a revoke that did something). */
  changed: boolean;
}

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * A local stand-in for the product's Auth service (docs/auth.md): issues JWTs, signs users in, and
 * keeps users' roles behind the service token. A control API makes it slow or unavailable
 * and shows the calls it received.
 */
export function buildAuthStandIn(opts: AuthOptions): {
  app: FastifyInstance;
  users: Map<string, AuthUser>;
  calls: Call[];
  token: (claims: Record<string, unknown>) => string;
} {
  const users = new Map((opts.users ?? DEMO_USERS).map((u) => [u.id, { ...u, roles: [...u.roles] }]));
  const calls: Call[] = [];
  let unavailableUntil = 0;
  let delayMs = 0;
  /** Calls waiting out the configured delay right now. */
  const held = new Set<string>();
  /** The role calls that changed a user's roles (a grant of a role the user had changes nothing). */
  const changing = new WeakSet<FastifyRequest>();
  const app = Fastify({ logger: false, forceCloseConnections: true });

  const token = (claims: Record<string, unknown>) => {
    const iat = Math.floor(Date.now() / 1000);
    return signJwt(
      {
        iat,
        exp: iat + (opts.tokenTtlSec ?? 3600),
        ...(opts.issuer ? { iss: opts.issuer } : {}),
        ...(opts.audience ? { aud: opts.audience } : {}),
        ...claims,
      },
      opts.signer,
    );
  };
  const problem = (status: number, error: string) => ({ status, error });

  app.addHook('preHandler', async (req, reply) => {
    if (!req.url.startsWith('/api/')) return;
    if (delayMs) {
      const key = `${req.method} ${req.url.split('?')[0]}`;
      held.add(key);
      await new Promise((r) => setTimeout(r, delayMs));
      held.delete(key);
    }
    if (Date.now() < unavailableUntil) return reply.status(503).send(problem(503, 'the Auth service is unavailable'));
    if (req.url.startsWith('/api/v1/users/')) {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!same(bearer, opts.serviceToken)) return reply.status(401).send(problem(401, 'invalid service token'));
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/api/')) {
      const body = req.url.includes('/auth/login')
        ? { login: (req.body as { login?: string } | undefined)?.login }
        : (req.body ?? null);
      calls.push({
        at: new Date().toISOString(),
        method: req.method,
        path: req.url.split('?')[0] ?? '',
        authorized: Boolean(req.headers.authorization),
        body,
        status: reply.statusCode,
        changed: changing.has(req),
      });
    }
    return payload;
  });

  const user = (req: FastifyRequest) => users.get(decodeURIComponent((req.params as { userId: string }).userId));

  app.post('/api/v1/auth/login', async (req, reply) => {
    const { login, password } = (req.body ?? {}) as { login?: string; password?: string };
    const u = [...users.values()].find((x) => x.login === login);
    if (!u || typeof password !== 'string' || !same(u.password, password))
      return reply.status(401).send(problem(401, 'wrong login or password'));
    return {
      access_token: token({ sub: u.id, roles: u.roles }),
      token_type: 'Bearer',
      expires_in: opts.tokenTtlSec ?? 3600,
    };
  });
  app.get('/api/v1/users/:userId/roles', async (req, reply) => {
    const u = user(req);
    return u ? { roles: u.roles } : reply.status(404).send(problem(404, 'no such user'));
  });
  app.post('/api/v1/users/:userId/roles', async (req, reply) => {
    const u = user(req);
    const role = (req.body as { role?: unknown } | undefined)?.role;
    if (!u) return reply.status(404).send(problem(404, 'no such user'));
    if (typeof role !== 'string' || !role) return reply.status(400).send(problem(400, 'role is required'));
    if (!u.roles.includes(role)) {
      u.roles.push(role);
      changing.add(req);
    }
    return reply.status(200).send({ roles: u.roles });
  });
  app.delete('/api/v1/users/:userId/roles/:role', async (req, reply) => {
    const u = user(req);
    const role = decodeURIComponent((req.params as { role: string }).role);
    if (!u || !u.roles.includes(role)) return reply.status(404).send(problem(404, 'the user does not have this role'));
    u.roles = u.roles.filter((r) => r !== role);
    changing.add(req);
    return reply.status(200).send({ roles: u.roles });
  });

  // Control API, for tests and the demo.
  app.get('/_control/calls', async () => calls);
  app.get('/_control/held', async () => [...held]);
  app.post('/_control/unavailable', async (req) => {
    unavailableUntil = Date.now() + Number((req.body as { forMs?: number } | undefined)?.forMs ?? 0);
    return { unavailableUntil: new Date(unavailableUntil).toISOString() };
  });
  app.post('/_control/delay', async (req) => {
    delayMs = Number((req.body as { ms?: number } | undefined)?.ms ?? 0);
    return { delayMs };
  });
  /** One user, or many at once (an array: a load generator's users), created or replaced. */
  app.post('/_control/users', { bodyLimit: 64 * 1024 * 1024 }, async (req) => {
    const add = (u: AuthUser) => {
      users.set(u.id, {
        id: u.id,
        login: u.login ?? u.id,
        password: u.password ?? `${u.id}-password`,
        roles: [...(u.roles ?? ['user'])],
      });
      return users.get(u.id);
    };
    return Array.isArray(req.body) ? { created: (req.body as AuthUser[]).map(add).length } : add(req.body as AuthUser);
  });
  app.get(
    '/_control/users/:userId',
    async (req, reply) => user(req) ?? reply.status(404).send(problem(404, 'no such user')),
  );
  app.post('/_control/token', async (req) => ({ access_token: token(req.body as Record<string, unknown>) }));
  return { app, users, calls, token };
}
