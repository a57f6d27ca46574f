import { createHmac, timingSafeEqual } from 'node:crypto';

// Recovery links (docs/api.md, recovery links): a signed, single-purpose, expiring token that lets
// a buyer replace one subscription's payment method from an e-mail, without signing in.

/** How long a link is valid. */
export const RECOVERY_LINK_TTL_MS = 7 * 86_400_000;

/** What a link may do: one action, for one subscription. */
export type RecoveryAction = 'payment-method';

const mac = (secret: string, payload: string) => createHmac('sha256', secret).update(payload).digest('base64url');

/** A token for `subscriptionId` and `action`, valid `RECOVERY_LINK_TTL_MS` from `now`. */
export function recoveryToken(
  secret: string,
  subscriptionId: string,
  now: Date,
  action: RecoveryAction = 'payment-method',
): string {
  const payload = Buffer.from(
    JSON.stringify({ s: subscriptionId, a: action, e: Math.floor((now.getTime() + RECOVERY_LINK_TTL_MS) / 1000) }),
  ).toString('base64url');
  return `${payload}.${mac(secret, payload)}`;
}

/** The subscription a token is for, when its mac verifies, it has not expired and it is for `action`; else null. */
export function readRecoveryToken(
  secret: string,
  token: string,
  now: Date,
  action: RecoveryAction = 'payment-method',
): { subscriptionId: string } | null {
  const [payload, given, ...rest] = token.split('.');
  if (!payload || !given || rest.length) return null;
  const want = Buffer.from(mac(secret, payload));
  const got = Buffer.from(given);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
  let claims: { s?: unknown; a?: unknown; e?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return null;
  }
  if (claims.a !== action || typeof claims.s !== 'string' || typeof claims.e !== 'number') return null;
  if (claims.e * 1000 <= now.getTime()) return null;
  return { subscriptionId: claims.s };
}

/** The page a link opens: the billing page, offering the action for that subscription. */
export function recoveryUrl(baseUrl: string, secret: string, subscriptionId: string, now: Date): string {
  return `${baseUrl.replace(/\/+$/, '')}/billing?recover=${recoveryToken(secret, subscriptionId, now)}`;
}
