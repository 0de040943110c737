// The nginx upload module's endpoint: POST UPLOAD_FORM_PATH (default /upload, and /upload/), either
// multipart/form-data (multipart-handler.ts) or the module's resumable mode (resumable-handler.ts:
// a raw body with Session-ID and X-Content-Range). The same gates as a tus creation run first: a
// bearer token with the upload scope when authentication is on, the notice queue's room, the store's
// free space for a multipart body's length (a resumable session reserves its whole file at its first
// segment, and its segments write within it).
//
// Multipart bodies are written into the store the uploads go to, the file store or the bucket
// (S3_BUCKET). The resumable mode writes segments at any offset, in place in the file: only the file
// store takes them. On the S3 store its segments are refused (501 ERR_NOT_ON_S3, docs/s3-store.md).
import express from 'express';
import type { Locker } from '@tus/utils';
import type { Config } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { authenticate } from '../../auth/middleware.ts';
import { allowedOrigin, corsPolicy } from '../../http/cors.ts';
import { publicOrigin } from '../../http/public-origin.ts';
import type { Log } from '../../../core/logger.ts';
import type { Notices } from '../../../hooks/notices.ts';
import type { DigestFileStore } from '../../backends/store/digest-store.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { nonNegativeInteger } from '../../http/tus-headers.ts';
import type { MultipartCompletion } from './completion.ts';
import { multipartHandler } from './multipart-handler.ts';
import type { MultipartHooks } from './multipart-hooks.ts';
import { resumableHandler } from './resumable-handler.ts';
import { isResumable } from './segment-headers.ts';
import type { ResumableSessions } from './resumable-sessions.ts';
import type { UploadAccess } from '../../pipeline/upload-access.ts';

export interface MultipartRoutesDeps {
  config: Config;
  /** The store the uploads go to: a multipart body's files become its uploads. */
  store: UploadStore;
  queue: Notices;
  completion: MultipartCompletion;
  /** The user's hooks on this path (multipart-hooks.ts). */
  hooks?: MultipartHooks;
  /** The tus routes' locker: each multipart file, and a resumable session's segments, are written under it. */
  locker: Locker;
  /** The resumable mode, where the uploads are files (the file store); none on the S3 store. */
  resumable?: ResumableRoutesDeps;
  log: Log;
}

/** What the resumable mode needs besides: segments are written in place in the file store's files. */
export interface ResumableRoutesDeps {
  store: DigestFileStore;
  /** The resumable sessions (restored from the store at start). */
  sessions: ResumableSessions;
  /** The access step: a segment of an open session passes it as a tus PATCH does (upload-access.ts). */
  access: UploadAccess;
}

/**
 * Why the resumable mode is not served on the S3 store: its segments come in any order, of any
 * size, and again; an S3 multipart upload takes parts by number, each at least 5 MiB but the last,
 * and its md5 must be taken over the bytes in order (docs/s3-store.md).
 */
const SEGMENTS_NOT_ON_S3 =
  "the nginx upload module's resumable mode (Session-ID segments written at any offset; an S3 multipart upload takes \
parts of 5 MiB or more, in order): multipart/form-data POSTs are served";

/**
 * A plain HTML form needs no CORS preflight, so a page on any other site could post files here
 * from a visitor's browser (and, without authentication, have them recorded). Browsers say where a
 * POST comes from in Origin: only this server's own pages and the CORS_ORIGINS may post. Clients
 * that are not browsers (curl, scripts) send no Origin and are not concerned.
 */
function sameOriginOrListed(config: Config): express.RequestHandler {
  const policy = corsPolicy(config.corsOrigins);
  return (req, _res, next) => {
    const origin = req.get('origin');
    if (origin === undefined || allowedOrigin(policy, origin)) return next();
    const own = publicOrigin(req, config.behindProxy);
    if (origin === `${own.proto}://${own.host}`) return next();
    next(new TuspassError(ERRORS.ERR_ORIGIN_FORBIDDEN, undefined, `Origin ${JSON.stringify(origin.slice(0, 200))}`));
  };
}

export function multipartRoutes(deps: MultipartRoutesDeps): express.Router {
  const router = express.Router({ strict: false, caseSensitive: true });
  const path = deps.config.uploadFormPath;
  const paths = [path, `${path}/`];
  router.post(
    paths,
    sameOriginOrListed(deps.config),
    authenticate(deps.config, () => 'upload'),
    async (req, res, next) => {
      try {
        if (deps.queue.isFull())
          throw Object.assign(new TuspassError(ERRORS.ERR_QUEUE_FULL), { headers: { 'Retry-After': '60' } });
        // A resumable segment writes within its session's file, reserved whole at its first segment.
        if (isResumable(req)) return next();
        // An early answer for a body that cannot fit (a multipart body is a little larger than its
        // files: never too little). Each part's bytes are admitted as they are written (the store's append).
        await deps.store.space.check(nonNegativeInteger(req.get('content-length')) ?? 0, undefined);
        next();
      } catch (e) {
        res.set('Connection', 'close');
        const headers = (e as { headers?: Record<string, string> }).headers;
        if (headers) res.set(headers);
        next(e);
      }
    },
  );
  const multipart = multipartHandler(deps);
  const resumable = deps.resumable && resumableHandler({ ...deps, ...deps.resumable });
  router.post(paths, (req, res, next) => {
    if (!isResumable(req)) return multipart(req, res, next);
    if (resumable) return resumable(req, res, next);
    // The segment's body is not read: the connection cannot be reused.
    res.set('Connection', 'close');
    next(new TuspassError(ERRORS.ERR_NOT_ON_S3, SEGMENTS_NOT_ON_S3));
  });
  router.all(paths, (_req, res, next) => {
    res.set('Allow', 'POST');
    next(new TuspassError(ERRORS.ERR_METHOD_NOT_ALLOWED));
  });
  return router;
}
