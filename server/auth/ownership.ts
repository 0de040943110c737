// Access to an existing upload on the tus routes: the subject that created an upload (kept in its
// info file) and admins may HEAD, PATCH, GET and DELETE it; anyone else is told there is no such
// upload, as for an id that does not exist (existence is not revealed). An upload a request of the
// nginx module is still writing (StoredInfo.resumable) is no tus upload yet, for anyone: a resumable
// session's file may be full length with holes in it, so a HEAD would report bytes never sent, a GET
// serve the holes and a PATCH finish it behind its session's back; a multipart request's part is not
// finished before its request posts the form (refused by a hook, it is removed).
import type express from 'express';
import type { Config } from '../config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { UploadStore } from '../upload/store/upload-store.ts';
import { nonNegativeInteger } from '../upload/tus-headers.ts';
import { maxSizeError, maxSizeFor } from './middleware.ts';
import { mayAccess, principalOf } from './principal.ts';

export function ownUpload(store: UploadStore): express.RequestHandler {
  return async (req, _res, next) => {
    const access = await store.accessOf(String(req.params.id)).catch(() => undefined);
    // No such upload: the route's handler answers as it does for any missing upload.
    if (!access) return next();
    const caller = principalOf(req);
    const allowed = !access.segmented && mayAccess(caller, access.owner);
    next(allowed ? undefined : new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND));
  };
}

/** A creation whose Upload-Length is past the caller's limit (MAX_SIZE, or the token's max_size): 413 before anything is created. */
export function creationLimit(config: Config): express.RequestHandler {
  return (req, _res, next) => {
    const length = nonNegativeInteger(req.get('upload-length'));
    if (length !== undefined && length > maxSizeFor(config, req)) return next(maxSizeError(config, req, length));
    next();
  };
}
