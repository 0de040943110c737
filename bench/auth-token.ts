// The small-uploads scenario's "auth on" side: the key the server verifies with, and tokens minted
// by hand as an app's JWT library would (HS256), one per upload.
import crypto from 'node:crypto';

export const BENCH_JWT_SECRET = 'bench-jwt-secret-0123456789abcdef-0123456789';

let minted = 0;

/** A fresh token (unique jti) for one of 100 subjects: no verified token is ever reused. */
export function benchToken(): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = {
    sub: `bench-${minted % 100}`,
    scope: 'upload read',
    exp: Math.floor(Date.now() / 1000) + 3600,
    jti: String(++minted),
  };
  const input = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${input}.${crypto.createHmac('sha256', BENCH_JWT_SECRET).update(input).digest('base64url')}`;
}
