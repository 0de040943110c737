// HMAC-SHA256 signatures of completion forms (and of HTTP hook payloads), so that the receiver can
// refuse anything the upload server did not send.
import crypto from 'node:crypto';

/** The header that carries the signature, as `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'Tuspass-Signature';

export function sign(secret: string, body: string | Buffer): string {
  return 'sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex');
}

/** Constant-time check of a signature header value against the body. */
export function verify(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(sign(secret, body));
  const given = Buffer.from(header);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
