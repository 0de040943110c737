// The bearer-token gate in front of the tus routes and the /api/uploads API (RFC 6750). It verifies
// the token, attaches the caller (principal.ts) and checks the scope the request needs; ownership
// of one upload or record is checked where that upload is known (pipeline/upload-access.ts,
// completion/app.ts), the caller's size limit where a size is known (maxSizeFor).
import type { IncomingMessage } from 'node:http';
import type express from 'express';
import type { Config } from '../config/config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { principalOf, setPrincipal, type Principal, type Scope } from './principal.ts';
import { TokenRejected, tokenVerifier } from './verify.ts';

/** Longer Authorization values are no token we made sense of (and are not kept in the verifier's memory). */
const MAX_TOKEN = 8192;
const REALM = 'realm="tuspass"';

/**
 * RFC 6750 §3: a request without credentials gets `WWW-Authenticate: Bearer` "and SHOULD NOT include
 * an error code"; an "expired, revoked, malformed, or invalid" token gets error="invalid_token"
 * (401); a token without the privileges the request needs, error="insufficient_scope" (403).
 */
function challenge(
  res: express.Response,
  error?: 'invalid_token' | 'insufficient_scope',
  description?: string,
  scope?: Scope,
): void {
  const parts = [REALM];
  if (error) parts.push(`error="${error}"`);
  if (description) parts.push(`error_description="${description.replace(/["\\]/g, "'")}"`);
  if (scope) parts.push(`scope="${scope}"`);
  res.set('WWW-Authenticate', `Bearer ${parts.join(', ')}`);
}

/** Whether the caller holds a scope; admin holds them all. Anonymous (auth off) holds everything. */
export const hasScope = (p: Principal | undefined, scope: Scope): boolean =>
  !p || p.scopes.has('admin') || p.scopes.has(scope);

/**
 * Verifies the bearer token of every request it sees, except CORS preflights (a browser sends them
 * without credentials), and refuses what lacks `scopeOf(req)`. No-op when authentication is off.
 */
export function authenticate(
  config: Config,
  scopeOf: (req: express.Request) => Scope | undefined,
): express.RequestHandler {
  const verifier = tokenVerifier(config);
  if (!verifier) return (_req, _res, next) => next();
  return (req, res, next) => {
    if (req.method === 'OPTIONS') return next();
    const header = req.headers.authorization;
    if (header === undefined) {
      challenge(res);
      return next(new TuspassError(ERRORS.ERR_AUTH_REQUIRED));
    }
    // "Bearer" is case-insensitive (RFC 9110 auth-scheme); the token is b64token characters.
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (!m || m[1]!.length > MAX_TOKEN) {
      challenge(res, 'invalid_token', 'the Authorization header is not "Bearer <token>"');
      return next(new TuspassError(ERRORS.ERR_TOKEN_INVALID, 'the Authorization header is not "Bearer <token>"'));
    }
    verifier.verify(m[1]!).then(
      (principal) => {
        setPrincipal(req, principal);
        const scope = scopeOf(req);
        if (scope && !hasScope(principal, scope)) {
          challenge(res, 'insufficient_scope', `this request needs the ${scope} scope`, scope);
          return next(new TuspassError(ERRORS.ERR_SCOPE_MISSING, `this request needs the ${scope} scope`));
        }
        next();
      },
      (e: unknown) => {
        if (!(e instanceof TokenRejected)) return next(e);
        challenge(res, 'invalid_token', e.message);
        next(new TuspassError(ERRORS.ERR_TOKEN_INVALID, e.message));
      },
    );
  };
}

/** The scopes of tus requests: downloads read, everything else (create, append, status, terminate) uploads. */
export const tusScope = (req: express.Request): Scope | undefined =>
  req.method === 'GET' ? 'read' : req.method === 'OPTIONS' ? undefined : 'upload';

/** The scopes of /api/uploads: reading the catalog reads, removing a record is an uploader's act on their own
 * upload. */
export const apiScope = (req: express.Request): Scope | undefined =>
  req.method === 'DELETE' ? 'upload' : req.method === 'OPTIONS' ? undefined : 'read';

/** The largest upload the caller may create: the smaller of MAX_SIZE and the token's max_size (Infinity: no limit). */
export function maxSizeFor(config: Config, req: IncomingMessage): number {
  return Math.min(config.maxSize || Infinity, principalOf(req)?.maxSize ?? Infinity);
}

/** The error for a size past the caller's limit: the token's own code when its max_size is what is exceeded. */
export function maxSizeError(config: Config, req: IncomingMessage, size: number): TuspassError {
  const own = principalOf(req)?.maxSize;
  if (own !== undefined && own < (config.maxSize || Infinity))
    return new TuspassError(ERRORS.ERR_TOKEN_MAX_SIZE_EXCEEDED, `${size} > ${own}`);
  return new TuspassError(ERRORS.ERR_MAX_SIZE_EXCEEDED, `${size} > ${config.maxSize}`);
}
