// HEAD /files/:id — the upload's offset and what is known about it, including its concatenation role.
import type express from 'express';
import { Metadata, type Locker } from '@tus/utils';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { DigestFileStore } from './digest-store.ts';
import { expiresHeader, isExpired } from './expiry.ts';
import { uploadUrl } from './upload-url.ts';
import { sendTus, sendTusError } from './tus-response.ts';
import { withLock } from './upload-lock.ts';

export function headHandler(store: DigestFileStore, locker: Locker, log: (line: string) => void): express.RequestHandler {
  return async (req, res) => {
    const id = String(req.params.id);
    try {
      // Taking the lock makes a stale PATCH of this upload (dead connection) let go first.
      const { upload, concat } = await withLock(locker, id, () => {}, async () => ({ upload: await store.getUpload(id), concat: await store.concatOf(id) }));
      // "the Server SHOULD respond with the 404 Not Found or 410 Gone status. The latter one SHOULD
      // be used if the Server is keeping track of expired uploads."
      // The same answer as a PATCH of it (patch-handler.ts): 410 ERR_UPLOAD_EXPIRED.
      if (await isExpired(store, upload)) throw new TuspassError(ERRORS.ERR_UPLOAD_EXPIRED);
      // "The Server MUST prevent the client and/or proxies from caching the response by adding the
      // Cache-Control: no-store header" and "MUST always include the Upload-Offset header".
      const headers: Record<string, string> = { 'Cache-Control': 'no-store', 'Upload-Offset': String(upload.offset), ...(await expiresHeader(store, upload)) };
      // "If the size of the upload is known, the Server MUST include the Upload-Length header";
      // otherwise "MUST set Upload-Defer-Length: 1".
      if (upload.size === undefined) headers['Upload-Defer-Length'] = '1';
      else headers['Upload-Length'] = String(upload.size);
      if (upload.metadata && Object.keys(upload.metadata).length) headers['Upload-Metadata'] = Metadata.stringify(upload.metadata);
      // "the Server MUST include the Upload-Concat header in the response to HEAD requests" for
      // partial and final uploads.
      if (concat?.kind === 'partial') headers['Upload-Concat'] = 'partial';
      if (concat?.kind === 'final') headers['Upload-Concat'] = `final;${concat.parts.map((p) => uploadUrl(req, p)).join(' ')}`;
      sendTus(res, 200, headers);
    } catch (e) {
      sendTusError(res, req, e, log);
    }
  };
}
