// Tokens minted by hand with node's crypto, independently of the server's verification code (jose):
// if these verify, any standard JWT library's tokens do.
import crypto from 'node:crypto';

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';

export type Claims = Record<string, unknown>;

/** Seconds since the epoch, `offset` seconds from now. */
export const inSeconds = (offset: number) => Math.floor(Date.now() / 1000) + offset;

export function signingInput(header: object, claims: Claims): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
}

/** HS256 (HMAC-SHA256 over "header.payload"), RFC 7515 by hand. */
export function hs256(
  claims: Claims,
  secret: string = TEST_JWT_SECRET,
  header: object = { alg: 'HS256', typ: 'JWT' },
): string {
  const input = signingInput(header, claims);
  return `${input}.${b64url(crypto.createHmac('sha256', secret).update(input).digest())}`;
}

/** RS256 / ES256 (signature as r||s, RFC 7518 §3.4) / EdDSA with a private key. */
export function signAsymmetric(alg: 'RS256' | 'ES256' | 'EdDSA', key: crypto.KeyObject, claims: Claims): string {
  const input = signingInput({ alg, typ: 'JWT' }, claims);
  const sig =
    alg === 'EdDSA'
      ? crypto.sign(null, Buffer.from(input), key)
      : crypto.sign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${b64url(sig)}`;
}

/** An unsigned token (alg "none"), as an attacker would send it. */
export const algNone = (claims: Claims) => `${signingInput({ alg: 'none', typ: 'JWT' }, claims)}.`;

/** A valid token for `sub` with these scopes, one hour long. */
export const tokenFor = (sub: string, scope: string, extra: Claims = {}, secret?: string) =>
  hs256({ sub, scope, exp: inSeconds(3600), iat: inSeconds(0), ...extra }, secret);

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
