// Which sources each test of this lib answers for. The HTTP base, metrics and lifecycle are
// exercised through every app's own tests (they build on createHttpApp), not measured here.
const MAP = {
  'config.test.ts': ['src/config.ts'],
  'jwt-auth.test.ts': ['src/jwt-auth.ts', 'src/config.ts'],
  'logger.test.ts': ['src/logger.ts', 'src/redact.ts', 'src/context.ts'],
  'ecs.test.ts': ['src/ecs.ts'],
  'http-guards.test.ts': ['src/rate-limit.ts', 'src/ttl-cache.ts', 'src/config.ts'],
};
export default (testFile) => MAP[testFile.split('/').pop()] ?? null;
