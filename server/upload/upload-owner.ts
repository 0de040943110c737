// Who creates an upload: the bearer token's `sub` when authentication is on, else the client's
// address. The `sub` decides who may act on the upload (auth/principal.ts mayAccess); both count
// for the per-owner limits (space-ledger.ts). Every creation route announces it to the store
// (store.announceOwner) before the store creates the upload; it is kept in the upload's info file,
// so the limits are rebuilt at start.
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { principalOf } from '../auth/principal.ts';

export type UploadOwner = { sub: string; address?: undefined } | { sub?: undefined; address: string };

/** The creator of what this request creates. */
export function uploadOwnerOf(req: IncomingMessage, behindProxy: boolean): UploadOwner {
  const sub = principalOf(req)?.sub;
  return sub !== undefined ? { sub } : { address: clientAddress(req, behindProxy) };
}

/** The key an owner's uploads are counted under (a subject and an address never share one). */
export function ownerKey(owner: UploadOwner): string {
  return owner.sub !== undefined ? `sub:${owner.sub}` : `address:${owner.address}`;
}

/** The key of the owner an info file names (store/announcements.ts StoredInfo); undefined for none. */
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

/** An address as a proxy writes it (`[v6]:port`, `v4:port`, bare), or undefined when it is none (`unknown`, `_hidden`). */
function ipOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  const candidate = bracketed ? bracketed[1]! : net.isIP(value) ? value : value.replace(/:\d+$/, '');
  return net.isIP(candidate) ? plainIp(candidate) : undefined;
}

/** `::ffff:127.0.0.1` is 127.0.0.1: one client, one key, whichever socket family it came by. */
const plainIp = (address: string): string => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '').toLowerCase();
