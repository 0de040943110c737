// Who creates an upload: the bearer token's `sub` when authentication is on, else the client's
// address. The `sub` decides who may act on the upload (auth/principal.ts mayAccess); both count
// for the per-owner limits (space-ledger.ts). Every creation route hands it to the store with the
// creation (store.create, NewUploadInfo); it is kept in the upload's info file,
// so the limits are rebuilt at start.
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { principalOf } from './principal.ts';

export type UploadOwner = { sub: string; address?: undefined } | { sub?: undefined; address: string };

/** The creator of what this request creates. */
export function uploadOwnerOf(req: IncomingMessage, behindProxy: boolean): UploadOwner {
  const sub = principalOf(req)?.sub;
  return sub !== undefined ? { sub } : { address: clientAddress(req, behindProxy) };
}

/**
 * The key an owner's uploads are counted under (a subject and an address never share one). An IPv6
 * address counts by its /64: one host is handed a whole /64 (SLAAC, privacy addresses) and can send
 * from any address in it, so per address it could open uploads without end.
 */
export function ownerKey(owner: UploadOwner): string {
  if (owner.sub !== undefined) return `sub:${owner.sub}`;
  return `address:${net.isIPv6(owner.address) ? network64(owner.address) : owner.address}`;
}

/** The /64 an IPv6 address is in, one spelling for all of its addresses: `2001:db8:0:7::/64`. */
function network64(address: string): string {
  const groups = (part: string) => (part ? part.split(':') : []).flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const front = groups(head);
  const all =
    tail === undefined
      ? front
      : [...front, ...Array<string>(Math.max(0, 8 - front.length - groups(tail).length)).fill('0'), ...groups(tail)];
  return `${all
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** The key of the owner an info file names (backends/store/stored-info.ts StoredInfo); undefined for none. */
export function storedOwnerKey(info: { owner?: string; address?: string } | undefined): string | undefined {
  if (info?.owner !== undefined) return ownerKey({ sub: info.owner });
  return info?.address !== undefined ? ownerKey({ address: info.address }) : undefined;
}

/**
 * The client's address: the connection's, or with BEHIND_PROXY the one the proxy saw. A proxy adds
 * the address it saw at the end of X-Forwarded-For (nginx: $proxy_add_x_forwarded_for) or of
 * Forwarded; what comes before is whatever the client wrote, so only the last element is read — a
 * client cannot pick another address to count under. X-Forwarded-For is read first, Forwarded only
 * when there is none: a proxy that appends to one passes the other through as the client wrote it
 * (the nginx of deploy/ sets X-Forwarded-For and forwards a client's Forwarded untouched), so the
 * header a proxy adds to must win. (Upload URLs read the first element's host and proto,
 * public-origin.ts: those a client may only spoil for itself.)
 */
export function clientAddress(req: IncomingMessage, behindProxy: boolean): string {
  if (behindProxy) {
    const forwarded = lastElement(req.headers.forwarded);
    const forwardedFor = forwarded ? /(?:^|;)\s*for\s*=\s*("?)([^";]*)\1/i.exec(forwarded)?.[2] : undefined;
    const xff = req.headers['x-forwarded-for'];
    const address = xff !== undefined ? ipOf(lastElement(xff)) : ipOf(forwardedFor);
    if (address) return address;
  }
  return plainIp(req.socket.remoteAddress ?? '');
}

const lastElement = (header: string | string[] | undefined): string | undefined =>
  (Array.isArray(header) ? header.join(',') : header)?.split(',').pop()?.trim();

/** An address as a proxy writes it (`[v6]:port`, `v4:port`, bare), or undefined when it is none (`unknown`,
 * `_hidden`). */
function ipOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  const candidate = bracketed ? bracketed[1]! : net.isIP(value) ? value : value.replace(/:\d+$/, '');
  return net.isIP(candidate) ? plainIp(candidate) : undefined;
}

/** `::ffff:127.0.0.1` is 127.0.0.1: one client, one key, whichever socket family it came by. */
const plainIp = (address: string): string => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '').toLowerCase();
