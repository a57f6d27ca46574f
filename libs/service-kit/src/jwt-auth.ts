import fastifyJwt from '@fastify/jwt';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { AppError } from './errors.js';

export interface JwtSettings {
  JWT_SECRET?: string | undefined;
  JWT_PUBLIC_KEY?: string | undefined;
  JWT_ISSUER?: string | undefined;
  JWT_AUDIENCE?: string | undefined;
  /** The cookie `authenticateCookie` reads (the admin portal's sign-in); @fastify/cookie must be registered. */
  cookieName?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: a valid JWT in the Authorization header only (docs/api.md), else 401. */
    authenticate: (req: FastifyRequest) => Promise<void>;
    /** A valid JWT in the `cookieName` cookie only (the portal's pages, docs/admin.md), else 401. */
    authenticateCookie: (req: FastifyRequest) => Promise<void>;
  }
  interface FastifyRequest {
    userId: string;
    userRoles: string[];
  }
}

const MAX_TOKEN_LENGTH = 8 * 1024;

/**
 * docs/api.md's token rules: the configured algorithm only (`none` never), `exp` required, `nbf`,
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
        // iss and aud are required claims once configured (docs/api.md): a token without them is refused.
        requiredClaims: ['exp', ...(cfg.JWT_ISSUER ? ['iss'] : []), ...(cfg.JWT_AUDIENCE ? ['aud'] : [])],
        cache: 10_000,
      },
    });
    app.decorateRequest('userId', '');
    app.decorateRequest('userRoles', null as unknown as string[]);
    const accept = (req: FastifyRequest, token: string | undefined) => {
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
    };
    app.decorate('authenticate', async (req: FastifyRequest) => {
      const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(req.headers.authorization ?? '');
      accept(req, m?.[1]);
    });
    app.decorate('authenticateCookie', async (req: FastifyRequest) => {
      const cookies = (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies;
      accept(req, cfg.cookieName ? cookies?.[cfg.cookieName] : undefined);
    });
  },
  { name: 'jwt-auth' },
);
