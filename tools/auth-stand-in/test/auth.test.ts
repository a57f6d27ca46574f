import t from 'tap';
import { AuthClient, AuthUnavailableError } from '@billing/auth-client';
import { buildAuthStandIn } from '../src/server.js';

const { app, calls } = buildAuthStandIn({ signer: { alg: 'HS256', secret: 'shh-secret' }, serviceToken: 'svc-token' });
const base = await app.listen({ port: 0, host: '127.0.0.1' });
t.teardown(() => app.close());
const client = new AuthClient({ baseUrl: base, serviceToken: 'svc-token', timeoutMs: 500 });

t.test('roles: read, grant (twice is fine), revoke (absent is fine), behind the service token', async (t) => {
  t.same(await client.getRoles('user-alice'), ['user']);
  await client.grantRole('user-alice', 'premium');
  await client.grantRole('user-alice', 'premium');
  t.same(await client.getRoles('user-alice'), ['user', 'premium']);
  await client.revokeRole('user-alice', 'premium');
  await client.revokeRole('user-alice', 'premium');
  t.same(await client.getRoles('user-alice'), ['user']);
  const wrong = new AuthClient({ baseUrl: base, serviceToken: 'nope' });
  t.match(await wrong.getRoles('user-alice').catch((e: unknown) => e), { name: 'AuthRefusedError', status: 401 });
  t.ok(
    calls.filter((c) => c.path.startsWith('/api/v1/users/')).every((c) => c.authorized),
    'every role call carried a bearer token',
  );
});

t.test('sign-in issues a JWT with sub, roles, iat and exp', async (t) => {
  const token = await client.login('admin', 'admin-password');
  t.ok(token);
  const claims = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString());
  t.match(claims, { sub: 'user-admin', roles: ['user', 'admin'] });
  t.ok(claims.exp > claims.iat);
  t.equal(await client.login('admin', 'wrong'), null);
  t.notOk(
    calls.some((c) => JSON.stringify(c.body).includes('admin-password')),
    'passwords are not kept in the call log',
  );
});

t.test('a slow or unavailable Auth service is an AuthUnavailableError', async (t) => {
  await app.inject({ method: 'POST', url: '/_control/unavailable', payload: { forMs: 300 } });
  await t.rejects(client.getRoles('user-alice'), AuthUnavailableError);
  await new Promise((r) => setTimeout(r, 350));
  t.same(await client.getRoles('user-alice'), ['user']);
  await app.inject({ method: 'POST', url: '/_control/delay', payload: { ms: 800 } });
  await t.rejects(client.getRoles('user-alice'), AuthUnavailableError, 'a timeout');
  await app.inject({ method: 'POST', url: '/_control/delay', payload: { ms: 0 } });
});

t.test('a load generator registers many users at once; each is then known', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/_control/users',
    payload: [{ id: 'many-1' }, { id: 'many-2', roles: ['user', 'vip'] }],
  });
  t.same(res.json(), { created: 2 });
  const two = await app.inject({ method: 'GET', url: '/_control/users/many-2' });
  t.same(two.json().roles, ['user', 'vip']);
  t.equal((await app.inject({ method: 'GET', url: '/_control/users/many-3' })).statusCode, 404);
});
