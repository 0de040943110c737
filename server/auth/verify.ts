// Verifying bearer JWTs with jose: one algorithm per configured key (HS256 for a secret; RS256, ES256
// or EdDSA by the public key's type), so a token naming another algorithm — `none`, or HS256 signed
// with the public key as a secret — is refused by the library before any claim is read.
import crypto from 'node:crypto';
import type { JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/config.ts';
import type { Principal, Scope } from './principal.ts';

// Imported when the first verifier is made: a server without authentication never loads jose.
type Jose = typeof import('jose');
let joseModule: Promise<Jose> | undefined;
const jose = (): Promise<Jose> => (joseModule ??= import('jose'));

export const SCOPES: readonly Scope[] = ['upload', 'read', 'admin'];

/** Clocks of the app that mints tokens and of this server may differ by this much (exp, nbf). */
const CLOCK_TOLERANCE_S = 30;
/** Verified tokens remembered (a client sends the same token on every request of an upload). */
const CACHE_SIZE = 1024;

/** Why a token was refused, for the answer's error_description (never the token itself). */
export class TokenRejected extends Error {}

interface Cached {
  principal: Principal;
  exp: number;
  nbf: number;
}

export class TokenVerifier {
  /**
   * A WebCrypto key imported once. jose verifies through WebCrypto; handed a KeyObject it converts
   * it on every call, which measured 200 µs of CPU per fresh HS256 token against 110 µs with the
   * CryptoKey kept (node 20) — a new token per small upload is then 3% of the upload's cost, not 5%.
   */
  private readonly key: Promise<CryptoKey>;
  private readonly algorithm: string;
  private readonly cache = new LRUCache<string, Cached>({ max: CACHE_SIZE });

  constructor(private readonly config: Config) {
    if (config.authJwtPublicKey) {
      this.algorithm = config.authJwtPublicKey.algorithm;
      // Any PEM form node reads (SPKI, PKCS#1, a certificate's key), handed to jose as SPKI.
      const spki = crypto
        .createPublicKey(config.authJwtPublicKey.pem)
        .export({ type: 'spki', format: 'pem' }) as string;
      const algorithm = this.algorithm;
      this.key = jose().then((j) => j.importSPKI(spki, algorithm));
    } else if (config.authJwtSecret) {
      this.algorithm = 'HS256';
      this.key = crypto.subtle.importKey(
        'raw',
        Buffer.from(config.authJwtSecret, 'utf8'),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['verify'],
      );
    } else throw new Error('TokenVerifier: no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY');
    // A key that cannot be imported is a configuration problem found at start (key-settings.ts);
    // keep an unexpected rejection from going unhandled until the first token.
    this.key.catch(() => undefined);
  }

  /**
   * The caller a token names, or TokenRejected. A token verified before is answered from memory:
   * the same string has the same signature and claims, and only the time checks are made again.
   */
  async verify(token: string): Promise<Principal> {
    const now = Date.now() / 1000;
    const hit = this.cache.get(token);
    if (hit) {
      if (now > hit.exp + CLOCK_TOLERANCE_S) {
        this.cache.delete(token);
        throw new TokenRejected('the token has expired');
      }
      if (now < hit.nbf - CLOCK_TOLERANCE_S) throw new TokenRejected('the token is not valid yet (nbf)');
      return hit.principal;
    }
    const { jwtVerify, errors } = await jose();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.key, {
        algorithms: [this.algorithm],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        ...(this.config.authJwtIssuer !== undefined && { issuer: this.config.authJwtIssuer }),
        ...(this.config.authJwtAudience !== undefined && { audience: this.config.authJwtAudience }),
      }));
    } catch (e) {
      throw new TokenRejected(describe(e, errors));
    }
    const principal = principalOfClaims(payload);
    this.cache.set(token, { principal, exp: payload.exp!, nbf: typeof payload.nbf === 'number' ? payload.nbf : 0 });
    return principal;
  }
}

/** The claims tuspass reads: sub, scope (space-separated; unknown scopes ignored), max_size. */
function principalOfClaims(payload: JWTPayload): Principal {
  if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 256)
    throw new TokenRejected('sub must be a non-empty string of at most 256 characters');
  // The subject becomes the owner written into log lines, forms and `tuspass uploads` tables: a line
  // break or a terminal escape in it would forge a log line or rewrite the operator's screen.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(payload.sub))
    throw new TokenRejected('sub must not contain control characters');
  const scope = payload.scope;
  if (scope !== undefined && typeof scope !== 'string')
    throw new TokenRejected('scope must be a space-separated string');
  const scopes = new Set((scope ?? '').split(' ').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)));
  const maxSize = payload.max_size;
  if (maxSize !== undefined && !(typeof maxSize === 'number' && Number.isSafeInteger(maxSize) && maxSize >= 1)) {
    throw new TokenRejected('max_size must be a whole number of bytes, at least 1');
  }
  return { sub: payload.sub, scopes, ...(maxSize !== undefined && { maxSize: maxSize as number }) };
}

/** jose's reasons in words a client can act on (no key material, no token). */
function describe(e: unknown, errors: Jose['errors']): string {
  if (e instanceof TokenRejected) return e.message;
  if (e instanceof errors.JWTExpired) return 'the token has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'the token is not valid yet (nbf)';
    if (e.reason === 'missing') return `the token lacks the ${e.claim} claim`;
    return `the token's ${e.claim} claim does not match`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm this server does not accept';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return 'the token is malformed';
  return 'the token could not be verified';
}

const verifiers = new WeakMap<Config, TokenVerifier>();

/** The verifier for a configuration, or undefined when authentication is off (no key configured). */
export function tokenVerifier(config: Config): TokenVerifier | undefined {
  if (!authEnabled(config)) return undefined;
  let v = verifiers.get(config);
  if (!v) verifiers.set(config, (v = new TokenVerifier(config)));
  return v;
}

export const authEnabled = (config: Config): boolean =>
  config.authJwtSecret !== undefined || config.authJwtPublicKey !== undefined;
