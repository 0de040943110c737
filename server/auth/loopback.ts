// Safe by default: without authentication tuspass serves anyone who can reach it, so it does so only
// on loopback unless the operator says so outright (ALLOW_ANONYMOUS).
import net from 'node:net';
import { ConfigError, type Config } from '../config.ts';
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
      '(or AUTH_JWT_SECRET_FILE / AUTH_JWT_PUBLIC_KEY) so uploads need a bearer token, or --allow-anonymous / ALLOW_ANONYMOUS=true to let anyone upload, read and delete',
  ]);
}
