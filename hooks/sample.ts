// A made-up but complete payload for an event, so a person can try a hook without uploading
// (`tuspass hooks test EVENT`), shaped like what the upload server sends.
import crypto from 'node:crypto';
import path from 'node:path';
import type { HookEventType, HookRequest } from './types.ts';

export interface SampleOptions {
  size?: number;
  metadata?: Record<string, string>;
  storeDir?: string;
}

export function samplePayload(type: HookEventType, options: SampleOptions = {}): HookRequest {
  const id = crypto.randomBytes(16).toString('hex');
  const size = options.size ?? 1024;
  const finished = type === 'pre-finish' || type === 'post-finish';
  const offset = type === 'pre-create' || type === 'post-create' ? 0 : finished ? size : Math.floor(size / 2);
  const file = path.join(options.storeDir ?? '/data/uploads', id);
  const method =
    { 'pre-create': 'POST', 'post-create': 'POST', 'pre-terminate': 'DELETE', 'post-terminate': 'DELETE' }[
      type as string
    ] ?? 'PATCH';
  return {
    Type: type,
    Event: {
      Upload: {
        ID: id,
        Size: size,
        SizeIsDeferred: false,
        Offset: offset,
        MetaData: options.metadata ?? { filename: 'example.pdf', filetype: 'application/pdf' },
        IsPartial: false,
        IsFinal: false,
        PartialUploads: null,
        Storage:
          type === 'pre-create' || type === 'post-terminate'
            ? null
            : { Type: 'filestore', Path: file, InfoPath: `${file}.json` },
        ...(finished ? { Digests: { md5: crypto.createHash('md5').update(id).digest('hex'), size } } : {}),
      },
      HTTPRequest: {
        Method: method,
        URI: method === 'POST' ? '/files/' : `/files/${id}`,
        RemoteAddr: '127.0.0.1:50000',
        Header: { 'Tus-Resumable': ['1.0.0'], 'User-Agent': ['tuspass hooks test'] },
      },
      // pre-access says what the request does to the upload (a PATCH writes).
      ...(type === 'pre-access' ? { Access: { Mode: 'write' as const } } : {}),
    },
  };
}
