// Safe by default: without authentication tuspass serves anyone who can reach it, so it does so only
// on loopback unless the operator says so outright (ALLOW_ANONYMOUS).
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { ConfigError, type Config } from '../config/config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { authEnabled } from './verify.ts';

/** 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Throws the start-up error (exit 78) for an anonymous server on an address others can reach. */
export function requireAuthBeyondLoopback(config: Config): void {
  if (authEnabled(config) || config.allowAnonymous || isLoopback(config.host)) return;
  throw new ConfigError([
    `HOST=${config.host} is reachable beyond this machine and no authentication is configured: set AUTH_JWT_SECRET ` +
      '(or AUTH_JWT_SECRET_FILE / AUTH_JWT_PUBLIC_KEY) so uploads need a bearer token, or --allow-anonymous / ' +
      'ALLOW_ANONYMOUS=true to let anyone upload, read and delete',
  ]);
}

/**
 * DNS rebinding: a web page whose name is made to resolve to 127.0.0.1 reaches a loopback server as
 * its own origin, so CORS does not stop it. An anonymous server therefore answers only requests
 * addressed to this machine by name (Host localhost, 127.x, [::1]); with authentication a page has no
 * token to send, and with ALLOW_ANONYMOUS the operator chose to serve any name. A request without a
 * Host (HTTP/1.0) names nothing and passes.
 */
export function loopbackHostOnly(config: Config): Middleware {
  if (authEnabled(config) || config.allowAnonymous) return (_req, _res, next) => next();
  return loopbackNamesOnly;
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void) => void;

/** Requests addressed to this machine by name pass; any other Host is 421 (see loopbackHostOnly). */
export const loopbackNamesOnly: Middleware = (req, _res, next) => {
  const host = req.headers.host;
  if (host === undefined || isLoopback(hostname(host))) return next();
  next(new TuspassError(ERRORS.ERR_HOST_NOT_LOOPBACK, undefined, `Host ${JSON.stringify(host.slice(0, 200))}`));
};

/** The name part of a Host header: `[::1]:1080` → `[::1]`, `localhost:1080` → `localhost`. */
const hostname = (host: string): string =>
  host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
