// HEAD /files/:id — the upload's offset and what is known about it, including its concatenation role.
//
// A HEAD is how a tus client resumes, and the one answer it may take for "start over": tus-js-client
// 4.3 (and so Uppy) retries a HEAD answered 423 and otherwise, on any status outside 2xx, creates a
// new upload — 4xx also drops the upload's URL from its storage (node_modules/tus-js-client/lib/
// upload.js, `_resumeUpload`: `if (status === 423) { ... retry later }`, then `this._createUpload()`).
// Its PATCH and POST failures are retried unless 4xx other than 409 and 423 (`defaultOnShouldRetry`),
// each retry resuming with a HEAD. So a HEAD answers 404 or 410 only for an upload that is gone, and
// 423 whenever it cannot answer now: the lock service away (then it reads without the lock,
// upload-lock.ts withReadLock), the store unreadable, anything else that would be a 5xx.
import type express from 'express';
import { Metadata } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { expiresHeader, isExpired } from '../../pipeline/expiry.ts';
import { uploadUrl } from './upload-url.ts';
import { sendTus } from '../../http/tus-response.ts';
import { withReadLock, type UploadLocker } from '../../backends/locker/upload-lock.ts';
import { answerError, knownError } from '../../http/error-answer.ts';

/** A failure of the server's (5xx, or unexpected) as the 423 clients retry; the client's own errors as they are. */
export function retryable(e: unknown): unknown {
  const known = knownError(e);
  const status = known instanceof TuspassError ? known.status : known ? known.status_code : 500;
  if (status < 500) return e;
  // For the log only: the original code and cause, or the unexpected error's stack.
  const detail =
    known instanceof TuspassError
      ? `${known.code}${known.logDetail ? ` ${known.logDetail}` : ''}`
      : ((e as Error)?.stack ?? String(e));
  return new TuspassError(ERRORS.ERR_UPLOAD_UNAVAILABLE, undefined, detail);
}

/**
 * The upload as a client resuming it asks for it (tus's HEAD, the IETF draft's offset retrieval):
 * under its read lock, so a stale append of it (dead connection) lets go first, and without the lock
 * while the lock service is away. 410 once expired.
 */
export async function uploadForResume(store: UploadStore, locker: UploadLocker, id: string) {
  const found = await withReadLock(locker, id, async () => ({
    upload: await store.getUpload(id),
    concat: await store.concatOf(id),
  }));
  // "the Server SHOULD respond with the 404 Not Found or 410 Gone status. The latter one SHOULD
  // be used if the Server is keeping track of expired uploads."
  // The same answer as a PATCH of it (patch-handler.ts): 410 ERR_UPLOAD_EXPIRED.
  if (await isExpired(store, found.upload)) throw new TuspassError(ERRORS.ERR_UPLOAD_EXPIRED);
  return found;
}

export function headHandler(
  store: UploadStore,
  locker: UploadLocker,
  log: (line: string) => void,
): express.RequestHandler {
  return async (req, res) => {
    const id = String(req.params.id);
    try {
      const { upload, concat } = await uploadForResume(store, locker, id);
      // "The Server MUST prevent the client and/or proxies from caching the response by adding the
      // Cache-Control: no-store header" and "MUST always include the Upload-Offset header".
      const headers: Record<string, string> = {
        'Cache-Control': 'no-store',
        'Upload-Offset': String(upload.offset),
        ...(await expiresHeader(store, upload)),
      };
      // "If the size of the upload is known, the Server MUST include the Upload-Length header";
      // otherwise "MUST set Upload-Defer-Length: 1".
      if (upload.size === undefined) headers['Upload-Defer-Length'] = '1';
      else headers['Upload-Length'] = String(upload.size);
      if (upload.metadata && Object.keys(upload.metadata).length)
        headers['Upload-Metadata'] = Metadata.stringify(upload.metadata);
      // "the Server MUST include the Upload-Concat header in the response to HEAD requests" for
      // partial and final uploads.
      if (concat?.kind === 'partial') headers['Upload-Concat'] = 'partial';
      if (concat?.kind === 'final')
        headers['Upload-Concat'] = `final;${concat.parts.map((p) => uploadUrl(req, p)).join(' ')}`;
      sendTus(res, 200, headers);
    } catch (e) {
      answerError(req, res, retryable(e), { log, form: 'tus' });
    }
  };
}
