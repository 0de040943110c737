// The upload server's express app: tus at /files/, the page at /, a health check, then the API
// routes given (the completion service or the pass-through to it), then the last handlers: 404 for
// unknown paths and one mapping of every error to an answer without paths or stacks.
// tuspass's own handlers take HEAD, GET, PATCH, DELETE and final concatenation; @tus/server creation
// and OPTIONS. Nothing here parses bodies on the tus routes: a PATCH body streams straight into the
// store. Every tus error answer, @tus/server's included, leaves through sendTusError (tus-response.ts).
import express from 'express';
import type { Server } from '@tus/server';
import type { Locker } from '@tus/utils';
import { pageRouter } from '../page.ts';
import type { Config } from '../config.ts';
import { API_CORS, cors, corsPolicy } from '../cors.ts';
import { loopbackHostOnly } from '../auth/loopback.ts';
import { asTuspassError, ERRORS, isCapacityRefusal, TuspassError } from '../../core/errors.ts';
import { pathForLog, type Log } from '../../core/logger.ts';
import { noteErrorCode, requestIdOf, requestIds } from '../request-id.ts';
import { noteDropped } from '../dropped-requests.ts';
import { authenticate, tusScope } from '../auth/middleware.ts';
import { creationLimit, ownUpload } from '../auth/ownership.ts';
import { countTusRequests } from '../metrics.ts';
import { CHECKSUM_ALGORITHMS } from '../hashing/checksum.ts';
import { DigestFileStore } from './digest-store.ts';
import type { UploadStore } from './store/upload-store.ts';
import { finalHandler } from './final-handler.ts';
import { getHandler } from './get-handler.ts';
import { headHandler } from './head-handler.ts';
import { patchHandler } from './patch-handler.ts';
import { deleteHandler } from './delete-handler.ts';
import { canonicalPath, concatHeader, concatRoleOf, creationHeaders, methodOverride, patchContentType, requireTusResumable, safeIntegers } from './protocol-guards.ts';
import { TUS_PATH } from './tus-headers.ts';
import { sendTusError } from './tus-response.ts';
import { tusServerHandler } from './tus-server.ts';
import { BEHIND_PROXY_SETTING } from './upload-url.ts';
import type { UploadEvents } from './upload-events.ts';
import { draftRoutes } from './ietf/routes.ts';

export interface UploadAppDeps {
  config: Config;
  tus: Server;
  store: UploadStore;
  locker: Locker;
  events: UploadEvents;
  log: Log;
  /** Least time between post-receive notices of one upload, ms. */
  postReceiveIntervalMs?: number;
  keepPartials?: boolean;
  /** The creation gate (admission.ts): free space and queue room, before any creation. */
  admission?: express.RequestHandler;
  /** Routes served after the page: the completion service's app, or the pass-through to it. */
  api?: express.RequestHandler;
  /** /healthz, /readyz, /metrics (server/ops-routes.ts). */
  ops?: express.RequestHandler;
  /** POST UPLOAD_FORM_PATH: the nginx upload module's multipart and resumable uploads (multipart/routes.ts). */
  multipart?: express.RequestHandler;
}

/** Another method on a tus URL: 405 with the methods that URL takes (RFC 9110: "MUST generate an Allow header"). */
const methodNotAllowed = (allow: string): express.RequestHandler => (_req, res, next) => {
  res.set('Allow', allow);
  next(new TuspassError(ERRORS.ERR_METHOD_NOT_ALLOWED));
};

/** Requests under /files (in any case: express routes case-insensitively) are answered in tus's format. */
const TUS_ROUTE = new RegExp(`^${TUS_PATH}(?:[/?]|$)`, 'i');

export function createUploadApp(deps: UploadAppDeps): express.Express {
  const { tus, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Before anything answers: an anonymous server serves only requests addressed to this machine.
  app.use(loopbackHostOnly(deps.config));
  // Upload URLs from X-Forwarded-* / Forwarded only when BEHIND_PROXY says a proxy sets them (public-origin.ts).
  app.set(BEHIND_PROXY_SETTING, deps.config.behindProxy);
  // First: every request gets its id (X-Request-Id, kept when sane) and every refusal one log line.
  app.use(requestIds(log));
  const handle = tusServerHandler(tus, deps.store, log);
  const one = `${TUS_PATH}/:id`;
  // Concatenation builds the final upload's file from the partials' files: the file store's alone.
  // On S3 (UploadPartCopy could copy parts of 5 MiB or more, not the small partials clients send)
  // both kinds of concatenated creation are refused with the reason.
  const store = deps.store;
  const final: express.RequestHandler = store instanceof DigestFileStore ? finalHandler({ ...deps, store, keepPartials: deps.keepPartials ?? false }) : (_req, _res, next) => next(new TuspassError(ERRORS.ERR_NOT_ON_S3, 'concatenation'));

  // tusd_requests_total: every request on the tus routes, refused ones too (one counter added).
  if (deps.config.metrics) app.use(TUS_PATH, countTusRequests);
  // The IETF Resumable Uploads draft: requests naming an interop version (ietf/routes.ts); the rest go on.
  if (deps.config.ietfDraft) app.use(TUS_PATH, draftRoutes({ ...deps, postReceiveIntervalMs: deps.postReceiveIntervalMs ?? 1000 }));
  // The path first: nothing (not even a 412) is decided about a request that names no upload.
  const origins = corsPolicy(deps.config.corsOrigins);
  // CORS first: every answer, refusals included, says which origin may read it.
  app.use(TUS_PATH, cors(origins), canonicalPath, methodOverride, requireTusResumable, safeIntegers, patchContentType, concatHeader);
  // Bearer tokens (server/auth/), after the method override (a POST standing for a DELETE needs what
  // a DELETE needs) and before any handler reads an upload: the scope, then the upload's owner.
  app.use(TUS_PATH, authenticate(deps.config, tusScope));
  app.all(one, ownUpload(deps.store));
  app.post(TUS_PATH, creationLimit(deps.config));
  app.options([TUS_PATH, `${TUS_PATH}/*rest`], (_req, res, next) => {
    // "the Server MUST include the Tus-Checksum-Algorithm header" in the OPTIONS response.
    res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    next();
  });
  app.head(one, headHandler(deps.store, deps.locker, log));
  // GET of the collection too: no GET reaches @tus/server's web-stream download.
  app.get([TUS_PATH, one], getHandler(deps.store, deps.locker, log));
  app.patch(one, patchHandler({ ...deps, postReceiveIntervalMs: deps.postReceiveIntervalMs ?? 1000 }));
  app.delete(one, deleteHandler(deps));
  if (deps.admission) app.post(TUS_PATH, deps.admission);
  app.post(TUS_PATH, (req, res, next) => (concatRoleOf(req) === 'final' || (concatRoleOf(req) === 'partial' && !(store instanceof DigestFileStore)) ? final(req, res, next) : next()));
  // @tus/server gets only what tuspass leaves to it: OPTIONS, and creation on the collection (its
  // POST handler would create an upload under any URL below /files), after the header values it
  // would refuse in its own words.
  app.options([TUS_PATH, `${TUS_PATH}/*rest`], handle);
  app.post(TUS_PATH, creationHeaders, handle);
  app.all(TUS_PATH, methodNotAllowed('OPTIONS, POST'));
  app.all(one, methodNotAllowed('OPTIONS, HEAD, GET, PATCH, DELETE'));
  // /health stays as an alias of /healthz.
  if (deps.ops) app.use(deps.ops);
  if (deps.multipart) app.use(deps.multipart);
  app.use(pageRouter(log));
  app.use('/api/uploads', cors(origins, API_CORS));
  if (deps.api) app.use(deps.api);

  app.use((_req, _res, next) => next(new TuspassError(ERRORS.ERR_NOT_FOUND)));
  // The one place the upload server's errors become answers: tus routes as the tus handlers answer
  // (`ERR_CODE: message`), the rest as the completion service does (JSON). Details only in the log.
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const tusRoute = TUS_ROUTE.test(req.originalUrl);
    // No one to answer: one line and a count of its own (dropped-requests.ts), whatever the error.
    if (noteDropped(req, res, err, log, tusRoute)) return;
    const e = asTuspassError(err);
    const detail = (e.logDetail ? ` (${e.logDetail})` : '') + (e.code === ERRORS.ERR_INTERNAL.code && err instanceof Error ? `\n${err.stack}` : '');
    noteErrorCode(res, e.code, e.logDetail);
    // A refusal by design is logged once, by the refused-request line (request-id.ts).
    if (!isCapacityRefusal(e.code) && (e.code !== ERRORS.ERR_NOT_FOUND.code || detail)) log(`upload: ${e.code} ${req.method} ${pathForLog(req.originalUrl)}: ${e.message}${detail}`, { request_id: requestIdOf(req), level: e.status >= 500 ? 'error' : 'info' });
    if (res.headersSent) return void res.destroy();
    if (tusRoute) return sendTusError(res, req, e, log);
    // Headers an error carries (Retry-After with a 503) go out with it, as on the tus routes.
    const headers = (err as { headers?: Record<string, string> } | undefined)?.headers;
    if (headers) res.set(headers);
    res.status(e.status).json(e.toJSON());
  });
  return app;
}
