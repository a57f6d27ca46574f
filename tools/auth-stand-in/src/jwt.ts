import { createHmac, createPrivateKey, sign as rsaSign, type KeyObject } from 'node:crypto';

const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');

export type Signer = { alg: 'HS256'; secret: string } | { alg: 'RS256'; privateKey: KeyObject | string };

/** Signs a JWT the way the Auth service does: HS256 with a shared secret, or RS256. */
export function signJwt(claims: Record<string, unknown>, signer: Signer, header: Record<string, unknown> = {}): string {
  const head = b64url(JSON.stringify({ alg: signer.alg, typ: 'JWT', ...header }));
  const body = b64url(JSON.stringify(claims));
  const input = `${head}.${body}`;
  const sig =
    signer.alg === 'HS256'
      ? createHmac('sha256', signer.secret).update(input).digest()
      : rsaSign(
          'RSA-SHA256',
          Buffer.from(input),
          typeof signer.privateKey === 'string' ? createPrivateKey(signer.privateKey) : signer.privateKey,
        );
  return `${input}.${b64url(sig)}`;
}
