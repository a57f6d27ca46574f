import { createHmac } from 'node:crypto';
import t from 'tap';
import { readRecoveryToken, recoveryToken, recoveryUrl, recoveryUrlOf, RECOVERY_LINK_TTL_MS } from '../src/index.js';

// docs/api.md, recovery links: signed, single-purpose, expiring, bound to one subscription.
const secret = 'a-recovery-link-secret-of-32-chars!!';
const sub = '6f1c2a7e-8b1d-4c39-9a55-0d7f8e2b1c44';
const now = new Date('2026-12-06T12:00:00Z');

t.test('a token reads back as its subscription until it expires, 7 days on', async (t) => {
  const token = recoveryToken(secret, sub, now);
  t.same(readRecoveryToken(secret, token, now), { subscriptionId: sub });
  t.same(readRecoveryToken(secret, token, new Date(now.getTime() + RECOVERY_LINK_TTL_MS - 1000)), {
    subscriptionId: sub,
  });
  t.equal(readRecoveryToken(secret, token, new Date(now.getTime() + RECOVERY_LINK_TTL_MS)), null, 'expired');
  t.equal(RECOVERY_LINK_TTL_MS, 7 * 86_400_000);
});

t.test('refused: another secret, a payload altered, another action, anything malformed', async (t) => {
  const token = recoveryToken(secret, sub, now);
  const [payload, mac] = token.split('.') as [string, string];
  t.equal(readRecoveryToken('another-secret-of-at-least-32-characters', token, now), null);
  const other = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), s: 'someone-else' }),
  ).toString('base64url');
  t.equal(readRecoveryToken(secret, `${other}.${mac}`, now), null, 'another subscription, same mac');
  t.equal(readRecoveryToken(secret, `${payload}.${mac.slice(1)}`, now), null, 'a mac cut short');
  // Signed right, but not what a link for this action says: another action, a payload that is not JSON.
  const sign = (payloadText: string) => {
    const p = Buffer.from(payloadText).toString('base64url');
    return `${p}.${createHmac('sha256', secret).update(p).digest('base64url')}`;
  };
  t.same(readRecoveryToken(secret, sign(JSON.stringify({ s: sub, a: 'payment-method', e: 9e9 })), now), {
    subscriptionId: sub,
  });
  t.equal(
    readRecoveryToken(secret, sign(JSON.stringify({ s: sub, a: 'cancel', e: 9e9 })), now),
    null,
    'another action',
  );
  t.equal(readRecoveryToken(secret, sign(JSON.stringify({ s: sub, a: 'payment-method' })), now), null, 'no expiry');
  t.equal(readRecoveryToken(secret, sign('not json'), now), null, 'not JSON');
  for (const bad of ['', 'abc', 'a.b.c', `${payload}.`, `.${mac}`])
    t.equal(readRecoveryToken(secret, bad, now), null, bad);
});

t.test('the link is the billing page; none without a secret', async (t) => {
  const url = new URL(recoveryUrl('https://billing.example/', secret, sub, now));
  t.equal(`${url.origin}${url.pathname}`, 'https://billing.example/billing');
  t.same(readRecoveryToken(secret, url.searchParams.get('recover')!, now), { subscriptionId: sub });
  t.equal(recoveryUrlOf({}, sub, now), null);
  t.match(
    recoveryUrlOf({ recoveryLinks: { baseUrl: 'https://b.example', secret } }, sub, now),
    /^https:\/\/b\.example\/billing\?recover=/,
  );
});
