import { createHmac } from 'node:crypto';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/**
 * An HS256 JWT as the Auth service would issue it, for in-process tests: `sub` and `roles`, issued
 * now, expiring in `expiresInS` (negative: already expired), signed with `secret`.
 */
export function hs256Token(
  secret: string,
  sub: string,
  roles: string[] = ['user'],
  { expiresInS = 600, extra = {} }: { expiresInS?: number; extra?: Record<string, unknown> } = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, roles, iat: now, exp: now + expiresInS, ...extra })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
