// Signatures of completion forms and HTTP hook payloads, so a receiver can refuse anything the upload
// server did not send — for that purpose, recently.
// - Purpose: each kind of message is signed with its own key, derived from the one secret with
//   HKDF-SHA256 and a purpose label. A signed hook payload (whose JSON can be made to read as a
//   urlencoded form through a chosen file name) therefore never verifies as a completion form.
// - Time: Stripe's scheme. `Tuspass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`;
//   receivers refuse a t older than the tolerance (SIGNATURE_TOLERANCE, 5 min) or that far ahead, so a
//   captured message cannot be replayed later. A queued form is signed again at each attempt.
import crypto from 'node:crypto';

/** The header that carries the signature (its home is core/wire.ts, with the other names on the wire). */
export { SIGNATURE_HEADER } from './wire.ts';

/** HKDF `info` labels: one key per kind of message. A new signing scheme gets new labels. */
export const SIGNATURE_PURPOSES = {
  'completion-form': 'tuspass completion-form v2',
  'hook-payload': 'tuspass hook-payload v2',
} as const;
export type SignaturePurpose = keyof typeof SIGNATURE_PURPOSES;

export const DEFAULT_TOLERANCE_MS = 5 * 60_000;

const keys = new Map<string, Buffer>();

/** The purpose's key: HKDF-SHA256(secret, salt empty, info label), 32 bytes. What receivers in other languages derive
 * too. */
export function purposeKey(secret: string, purpose: SignaturePurpose): Buffer {
  const id = `${purpose}\0${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.alloc(0), SIGNATURE_PURPOSES[purpose], 32));
    // A process uses one or two secrets; the bound only guards against a caller deriving per request.
    if (keys.size > 64) keys.clear();
    keys.set(id, key);
  }
  return key;
}

const mac = (key: Buffer, t: number, body: string | Buffer) =>
  crypto.createHmac('sha256', key).update(`${t}.`).update(body).digest('hex');

/** The header value for `body`, dated `atMs` (now by default). */
export function sign(secret: string, purpose: SignaturePurpose, body: string | Buffer, atMs = Date.now()): string {
  const t = Math.floor(atMs / 1000);
  return `t=${t},v1=${mac(purposeKey(secret, purpose), t, body)}`;
}

export type SignatureCheck =
  | { ok: true }
  | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'future' | 'mismatch' };

export interface VerifyOptions {
  /** Oldest (and furthest ahead) a signature may be dated, in ms. Default 5 minutes. */
  toleranceMs?: number;
  /** The receiver's clock, for tests. */
  nowMs?: number;
}

/**
 * Checks a Tuspass-Signature header against the body, for one purpose. Constant-time comparison;
 * several v1 entries (a sender rotating secrets) pass when one matches. The reason is for the
 * receiver's log, not for the sender: answer every failure alike.
 */
export function checkSignature(
  secret: string,
  purpose: SignaturePurpose,
  body: string | Buffer,
  header: string | undefined,
  options: VerifyOptions = {},
): SignatureCheck {
  if (!header) return { ok: false, reason: 'missing' };
  let t: number | undefined;
  const given: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq < 0) return { ok: false, reason: 'malformed' };
    if (name === 't') {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return { ok: false, reason: 'malformed' };
      t = Number(value);
    } else if (name === 'v1') {
      if (!/^[0-9a-f]{64}$/.test(value)) return { ok: false, reason: 'malformed' };
      given.push(Buffer.from(value, 'hex'));
    }
    // Other schemes (v0, later versions) are not ours to judge: skipped, as Stripe's receivers do.
  }
  if (t === undefined || given.length === 0) return { ok: false, reason: 'malformed' };
  const toleranceS = (options.toleranceMs ?? DEFAULT_TOLERANCE_MS) / 1000;
  const now = (options.nowMs ?? Date.now()) / 1000;
  if (t < now - toleranceS) return { ok: false, reason: 'expired' };
  if (t > now + toleranceS) return { ok: false, reason: 'future' };
  const expected = Buffer.from(mac(purposeKey(secret, purpose), t, body), 'hex');
  return given.some((g) => crypto.timingSafeEqual(g, expected)) ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/** checkSignature as a yes or no. */
export function verify(
  secret: string,
  purpose: SignaturePurpose,
  body: string | Buffer,
  header: string | undefined,
  options: VerifyOptions = {},
): boolean {
  return checkSignature(secret, purpose, body, header, options).ok;
}
