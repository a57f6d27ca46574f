import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { AppError } from './errors.js';

/**
 * Per-client limits for the routes that ask for one (`config: { rateLimit: { max, timeWindow } }`),
 * keyed by the client's address (behind a proxy, TRUST_PROXY decides which address that is).
 * Over the limit: 429 `rate-limited` with Retry-After. Counted per replica, in memory.
 */
export async function registerRateLimits(app: FastifyInstance): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
      'retry-after': true,
    },
    errorResponseBuilder: (_req, ctx) =>
      new AppError(
        'rate-limited',
        `at most ${ctx.max} requests from one client in this window; try again in ${ctx.after}`,
        {
          'retry-after': String(Math.max(1, Math.ceil(ctx.ttl / 1000))),
        },
      ),
  });
}
