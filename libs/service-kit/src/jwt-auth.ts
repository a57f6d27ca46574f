import fastifyJwt from '@fastify/jwt';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { AppError } from './errors.js';

export interface JwtSettings {
  JWT_SECRET?: string | undefined;
  JWT_PUBLIC_KEY?: string | undefined;
  JWT_ISSUER?: string | undefined;
  JWT_AUDIENCE?: string | undefined;
  /** Also accept the token from this cookie (the admin portal's sign-in); @fastify/cookie must be registered. */
  cookieName?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: a valid bearer JWT (SPEC §3), else 401. */
    authenticate: (req: FastifyRequest) => Promise<void>;
  }
  interface FastifyRequest {
    userId: string;
    userRoles: string[];
  }
}

const MAX_TOKEN_LENGTH = 8 * 1024;

/**
 * SPEC §3's token rules: the configured algorithm only (`none` never), `exp` required, `nbf`,
 * issuer and audience checked, 60 s of clock skew, from the Authorization header only.
 */
export const jwtAuth = fp<JwtSettings>(
  async (app, cfg) => {
    const alg = cfg.JWT_SECRET ? 'HS256' : 'RS256';
    await app.register(fastifyJwt, {
      secret: cfg.JWT_SECRET ?? { public: (cfg.JWT_PUBLIC_KEY ?? '').replace(/\\n/g, '\n'), private: 'verify-only' },
      verify: {
        algorithms: [alg],
        ...(cfg.JWT_ISSUER ? { allowedIss: cfg.JWT_ISSUER } : {}),
        ...(cfg.JWT_AUDIENCE ? { allowedAud: cfg.JWT_AUDIENCE } : {}),
        clockTolerance: 60_000,
        requiredClaims: ['exp'],
        cache: 10_000,
      },
    });
    app.decorateRequest('userId', '');
    app.decorateRequest('userRoles', null as unknown as string[]);
    app.decorate('authenticate', async (req: FastifyRequest) => {
      const header = req.headers.authorization ?? '';
      const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header);
      if (header && !m) throw new AppError('unauthorized', 'a valid bearer token is required');
      const cookie = cfg.cookieName
        ? (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[cfg.cookieName]
        : undefined;
      const token = m?.[1] ?? (header ? undefined : cookie);
      if (!token || token.length > MAX_TOKEN_LENGTH)
        throw new AppError('unauthorized', 'a valid bearer token is required');
      let claims: { sub?: unknown; roles?: unknown };
      try {
        claims = app.jwt.verify<{ sub?: unknown; roles?: unknown }>(token);
      } catch {
        throw new AppError('unauthorized', 'the bearer token is invalid, expired or not yet valid');
      }
      if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 200)
        throw new AppError('unauthorized', 'the token names no user');
      req.userId = claims.sub;
      req.userRoles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
    });
  },
  { name: 'jwt-auth' },
);
