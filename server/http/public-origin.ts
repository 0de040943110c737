// The scheme and host clients reach this server by, for the upload URLs we hand out (Location,
// Upload-Concat). From the connection (TLS or not) and Host; with BEHIND_PROXY=true (tusd's
// -behind-proxy) from the proxy's Forwarded or X-Forwarded-Proto / X-Forwarded-Host instead.
// Off by default: a client could otherwise make the server hand out URLs on a host of its choosing.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** A host[:port] as a URL authority may carry it: a name, IPv4 or a bracketed IPv6, nothing else (no `/`, `@`,
 * spaces). */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

const validHost = (h: string | undefined) => (h !== undefined && HOST.test(h) ? h : undefined);
const validProto = (p: string | undefined) => (p === 'http' || p === 'https' ? p : undefined);
const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();

/** RFC 7239: the first (client-side) element's `proto` and `host`; values may be quoted. */
function forwarded(header: string | undefined): { proto?: string; host?: string } {
  const element = header?.split(',')[0];
  if (!element) return {};
  const out: Record<string, string> = {};
  for (const pair of element.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    out[pair.slice(0, eq).trim().toLowerCase()] = pair
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
  }
  return { proto: out.proto?.toLowerCase(), host: out.host };
}

export function publicOrigin(req: IncomingMessage, behindProxy: boolean): { proto: string; host: string } {
  let proto = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  let host = req.headers.host ?? '';
  if (behindProxy) {
    const f = forwarded(req.headers.forwarded);
    proto = validProto(f.proto) ?? validProto(first(req.headers['x-forwarded-proto'])?.toLowerCase()) ?? proto;
    host = validHost(f.host) ?? validHost(first(req.headers['x-forwarded-host'])) ?? host;
  }
  return { proto, host };
}
