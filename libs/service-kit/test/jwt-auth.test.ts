import { createHmac } from 'node:crypto';
import t from 'tap';
import Fastify from 'fastify';
import cookie from '@fastify/cookie';
import { checkJwt } from '../src/config.js';
import { jwtAuth } from '../src/jwt-auth.js';

// docs/auth.md: the token rules, against a real Fastify app with the plugin registered.
const secret = 'jwt-auth-test-secret-0123456789abcdef';
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
function sign(claims: Record<string, unknown>, key = secret) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}
const now = () => Math.floor(Date.now() / 1000);

async function appWith(cfg: Record<string, string>) {
  const app = Fastify();
  await app.register(cookie);
  await app.register(jwtAuth, { JWT_SECRET: secret, cookieName: 'session', ...cfg });
  app.get('/bearer', { onRequest: app.authenticate }, async (req) => ({ user: req.userId, roles: req.userRoles }));
  app.get('/cookie', { onRequest: app.authenticateCookie }, async (req) => ({ user: req.userId }));
  app.setErrorHandler((err: { status?: number }, _req, reply) => reply.status(err.status ?? 500).send({ error: true }));
  await app.ready();
  return app;
}

t.test(
  'with JWT_ISSUER and JWT_AUDIENCE set, iss and aud are required claims, not only checked when present',
  async (t) => {
    const app = await appWith({ JWT_ISSUER: 'https://auth.example', JWT_AUDIENCE: 'billing' });
    t.teardown(() => app.close());
    const status = async (claims: Record<string, unknown>) =>
      (await app.inject({ url: '/bearer', headers: { authorization: `Bearer ${sign(claims)}` } })).statusCode;
    const base = { sub: 'u1', roles: ['user'], iat: now(), exp: now() + 600 };
    t.equal(await status({ ...base, iss: 'https://auth.example', aud: 'billing' }), 200);
    t.equal(await status({ ...base, aud: 'billing' }), 401, 'no iss');
    t.equal(await status({ ...base, iss: 'https://auth.example' }), 401, 'no aud');
    t.equal(await status(base), 401, 'neither');
    t.equal(await status({ ...base, iss: 'https://evil.example', aud: 'billing' }), 401, 'another issuer');
    t.equal(await status({ ...base, iss: 'https://auth.example', aud: 'other' }), 401, 'another audience');
  },
);

t.test('without JWT_ISSUER / JWT_AUDIENCE, the claims are not asked for', async (t) => {
  const app = await appWith({});
  t.teardown(() => app.close());
  const res = await app.inject({
    url: '/bearer',
    headers: { authorization: `Bearer ${sign({ sub: 'u1', roles: ['a', 7], exp: now() + 60 })}` },
  });
  t.same(res.json(), { user: 'u1', roles: ['a'] }, 'roles that are not strings are dropped');
});

t.test('the header opens bearer routes only, the cookie cookie routes only; bad tokens are 401', async (t) => {
  const app = await appWith({});
  t.teardown(() => app.close());
  const good = sign({ sub: 'u1', exp: now() + 60 });
  const get = async (url: string, headers: Record<string, string>) => (await app.inject({ url, headers })).statusCode;
  t.equal(await get('/bearer', { authorization: `Bearer ${good}` }), 200);
  t.equal(await get('/bearer', { cookie: `session=${good}` }), 401, 'the cookie opens no bearer route');
  t.equal(await get('/cookie', { cookie: `session=${good}` }), 200);
  t.equal(await get('/cookie', { authorization: `Bearer ${good}` }), 401, 'the header opens no cookie route');
  t.equal(await get('/bearer', { authorization: `Bearer ${sign({ sub: 'u1' })}` }), 401, 'no exp');
  t.equal(
    await get('/bearer', { authorization: `Bearer ${sign({ sub: 'u1', exp: now() - 120 })}` }),
    401,
    'expired past the skew',
  );
  t.equal(
    await get('/bearer', { authorization: `Bearer ${sign({ sub: 'u1', exp: now() + 60, nbf: now() + 600 })}` }),
    401,
    'not yet valid',
  );
  t.equal(
    await get('/bearer', {
      authorization: `Bearer ${sign({ sub: 'u1', exp: now() + 60 }, 'another-secret-0123456789abcdef012')}`,
    }),
    401,
    'wrong key',
  );
  t.equal(await get('/bearer', { authorization: `Bearer ${sign({ exp: now() + 60 })}` }), 401, 'no sub');
  t.equal(
    await get('/bearer', { authorization: `Bearer ${sign({ sub: 'x'.repeat(201), exp: now() + 60 })}` }),
    401,
    'a sub too long',
  );
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u1', exp: now() + 60 })}.`;
  t.equal(await get('/bearer', { authorization: `Bearer ${none}` }), 401, 'alg none');
  t.equal(await get('/bearer', { authorization: `Basic ${good}` }), 401, 'not a bearer header');
  t.equal(await get('/bearer', { authorization: `Bearer ${'a'.repeat(9000)}.b.c` }), 401, 'an oversized token');
  t.equal(await get(`/bearer?access_token=${good}`, {}), 401, 'a token in the query string is ignored');
});

t.test('an HS256 secret shorter than 32 bytes is refused at start-up', async (t) => {
  t.match(checkJwt({ JWT_SECRET: 'short-secret' }), [/JWT_SECRET is too short: at least 32 bytes/]);
  t.same(checkJwt({ JWT_SECRET: 'x'.repeat(32) }), []);
  t.match(checkJwt({ JWT_SECRET: 'é'.repeat(16) }), [], 'bytes, not characters: 16 × 2 bytes');
});
