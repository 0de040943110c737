// Builds tusd-shaped hook requests (hooks/types.ts) from @tus/server's request and upload objects.
import type { Upload } from '@tus/utils';
import type { HookEventType, HookHTTPRequest, HookRequest, HookUpload } from '../../hooks/types.ts';
import type { Digests } from './digest-state.ts';

/** @tus/server 2.x hands hooks a web Request with the node request attached by srvx. */
type TusRequest = Request & { runtime?: { node?: { req?: { socket?: { remoteAddress?: string; remotePort?: number } } } } };

export function httpRequestOf(req: TusRequest): HookHTTPRequest {
  const header: Record<string, string[]> = {};
  req.headers.forEach((value, key) => {
    (header[key] ??= []).push(value);
  });
  const url = new URL(req.url);
  const socket = req.runtime?.node?.req?.socket;
  return {
    Method: req.method,
    URI: url.pathname + url.search,
    RemoteAddr: socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? 0}` : '',
    Header: header,
  };
}

export function hookUploadOf(upload: Upload, storePath: (id: string) => string, digests?: Digests): HookUpload {
  const path = storePath(upload.id);
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(upload.metadata ?? {})) if (v !== null && v !== undefined) meta[k] = v;
  return {
    ID: upload.id,
    Size: upload.size ?? 0,
    SizeIsDeferred: upload.size === undefined,
    Offset: upload.offset,
    MetaData: meta,
    IsPartial: false,
    IsFinal: false,
    PartialUploads: null,
    Storage: { Type: 'filestore', Path: path, InfoPath: `${path}.json` },
    ...(digests ? { Digests: digests } : {}),
  };
}

export function hookRequest(type: HookEventType, req: TusRequest, upload: HookUpload): HookRequest {
  return { Type: type, Event: { Upload: upload, HTTPRequest: httpRequestOf(req) } };
}
