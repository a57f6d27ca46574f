/**
 * Accepted checkouts per user in a sliding window (docs/api.md: 10 a minute, per replica). Kept
 * in-process rather than with @fastify/rate-limit because docs/api.md counts only requests that pass
 * validation and the idempotency lookup, which a route-level hook cannot see.
 */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Counts one hit and returns 0, or the seconds to wait when over the limit (nothing counted). */
  take(key: string, now = Date.now()): number {
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (recent.length >= this.limit) {
      this.hits.set(key, recent);
      return Math.max(1, Math.ceil(((recent[0] as number) + this.windowMs - now) / 1000));
    }
    recent.push(now);
    this.hits.set(key, recent);
    if (this.hits.size > 100_000) this.sweep(now);
    return 0;
  }

  private sweep(now: number): void {
    for (const [k, v] of this.hits) if (!v.some((t) => t > now - this.windowMs)) this.hits.delete(k);
  }
}
