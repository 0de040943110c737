// The upload server's express app: tus at /files/, the page at /, a health check, then the API
// routes given (the completion service or the pass-through to it), then the last handlers: 404 for
// unknown paths and one mapping of every error to an answer without paths or stacks.
// Every tus request is tuspass's own handlers': creation, OPTIONS, HEAD, GET, PATCH, DELETE and final
// concatenation. Nothing here parses bodies on the tus routes: a PATCH or creation body streams
// straight into the store. Every tus error answer leaves through the error responder (error-answer.ts).
import express from 'express';
import type { Locker } from '@tus/utils';
import { pageRouter } from './page.ts';
import type { Config } from '../config/config.ts';
import { API_CORS, cors, corsPolicy } from '../http/cors.ts';
import { loopbackHostOnly } from '../auth/loopback.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { Log } from '../../core/logger.ts';
import { requestIds } from '../http/request-id.ts';
import { authenticate, tusScope } from '../auth/middleware.ts';
import { countTusRequests } from '../ops/metrics.ts';
import { CHECKSUM_ALGORITHMS } from '../hashing/checksum.ts';
import { concatenates, type UploadStore } from '../backends/store/upload-store.ts';
import { finalHandler } from './tus/final-handler.ts';
import { getHandler } from './tus/get-handler.ts';
import { headHandler } from './tus/head-handler.ts';
import { patchHandler } from './tus/patch-handler.ts';
import { deleteHandler } from './tus/delete-handler.ts';
import { creationHandler } from './tus/creation-handler.ts';
import { optionsHandler } from './tus/options-handler.ts';
import {
  canonicalPath,
  concatHeader,
  concatRoleOf,
  creationHeaders,
  creationLimit,
  methodOverride,
  patchContentType,
  requireTusResumable,
  safeIntegers,
} from './tus/protocol-guards.ts';
import { TUS_PATH } from '../http/tus-headers.ts';
import { BEHIND_PROXY_SETTING } from './tus/upload-url.ts';
import type { UploadEvents } from '../pipeline/upload-events.ts';
import type { UploadAccess } from '../pipeline/upload-access.ts';
import { draftRoutes } from './ietf/routes.ts';
import { answerError } from '../http/error-answer.ts';

export interface UploadAppDeps {
  config: Config;
  store: UploadStore;
  locker: Locker;
  events: UploadEvents;
  /** The access step every request on an existing upload passes (upload-access.ts): its owner, the pre-access hook. */
  access: UploadAccess;
  log: Log;
  /** Least time between post-receive notices of one upload, ms. */
  postReceiveIntervalMs?: number;
  keepPartials?: boolean;
  /** The creation gate (admission.ts): free space and queue room, before any creation. */
  admission?: express.RequestHandler;
  /** Routes served after the page: the completion service's app, or the pass-through to it. */
  api?: express.RequestHandler;
  /** /healthz, /readyz, /metrics (server/start/ops-routes.ts). */
  ops?: express.RequestHandler;
  /** POST UPLOAD_FORM_PATH: the nginx upload module's multipart and resumable uploads (nginx/routes.ts). */
  multipart?: express.RequestHandler;
}

/** Another method on a tus URL: 405 with the methods that URL takes (RFC 9110: "MUST generate an Allow header"). */
const methodNotAllowed =
  (allow: string): express.RequestHandler =>
  (_req, res, next) => {
    res.set('Allow', allow);
    next(new TuspassError(ERRORS.ERR_METHOD_NOT_ALLOWED));
  };

export function createUploadApp(deps: UploadAppDeps): express.Express {
  const { log } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Before anything answers: an anonymous server serves only requests addressed to this machine.
  app.use(loopbackHostOnly(deps.config));
  // Upload URLs from X-Forwarded-* / Forwarded only when BEHIND_PROXY says a proxy sets them (public-origin.ts).
  app.set(BEHIND_PROXY_SETTING, deps.config.behindProxy);
  // First: every request gets its id (X-Request-Id, kept when sane) and every refusal one log line.
  app.use(requestIds(log));
  const one = `${TUS_PATH}/:id`;
  // Concatenation is a capability of the store (UploadStore.concatenate: the file store and the S3
  // store have it). On a store without it both kinds of concatenated creation are refused with the
  // reason: a partial that could never be part of a final would be bytes for nothing.
  const store = deps.store;
  const concatenating = concatenates(store);
  const final: express.RequestHandler = concatenating
    ? finalHandler({ ...deps, store, keepPartials: deps.keepPartials ?? false })
    : (_req, _res, next) => next(new TuspassError(ERRORS.ERR_CONCAT_UNSUPPORTED));

  // tusd_requests_total: every request on the tus routes, refused ones too (one counter added).
  if (deps.config.metrics) app.use(TUS_PATH, countTusRequests);
  // The IETF Resumable Uploads draft: requests naming an interop version (ietf/routes.ts); the rest go on.
  if (deps.config.ietfDraft)
    app.use(TUS_PATH, draftRoutes({ ...deps, postReceiveIntervalMs: deps.postReceiveIntervalMs ?? 1000 }));
  // The path first: nothing (not even a 412) is decided about a request that names no upload.
  const origins = corsPolicy(deps.config.corsOrigins);
  // CORS first: every answer, refusals included, says which origin may read it.
  app.use(
    TUS_PATH,
    cors(origins),
    canonicalPath,
    methodOverride,
    requireTusResumable,
    safeIntegers,
    patchContentType,
    concatHeader,
  );
  // Bearer tokens (server/auth/), after the method override (a POST standing for a DELETE needs what
  // a DELETE needs) and before any handler reads an upload: the scope, then the access step (the
  // upload's owner, the pre-access hook: upload-access.ts).
  app.use(TUS_PATH, authenticate(deps.config, tusScope));
  app.all(one, deps.access.middleware());
  app.post(TUS_PATH, creationLimit(deps.config));
  app.options([TUS_PATH, `${TUS_PATH}/*rest`], (_req, res, next) => {
    // "the Server MUST include the Tus-Checksum-Algorithm header" in the OPTIONS response.
    res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    next();
  });
  app.head(one, headHandler(deps.store, deps.locker, log));
  // GET of the collection too: a download needs an upload's id.
  app.get([TUS_PATH, one], getHandler(deps.store, deps.locker, log));
  const appending = { ...deps, postReceiveIntervalMs: deps.postReceiveIntervalMs ?? 1000 };
  app.patch(one, patchHandler(appending));
  app.delete(one, deleteHandler(deps));
  if (deps.admission) app.post(TUS_PATH, deps.admission);
  app.post(TUS_PATH, (req, res, next) =>
    concatRoleOf(req) === 'final' || (concatRoleOf(req) === 'partial' && !concatenating)
      ? final(req, res, next)
      : next(),
  );
  // OPTIONS anywhere below /files (a preflight names the URL of the request to come); creation on
  // the collection only, after the header rules every creation obeys.
  app.options([TUS_PATH, `${TUS_PATH}/*rest`], optionsHandler(deps.config, store));
  app.post(TUS_PATH, creationHeaders, creationHandler(appending));
  app.all(TUS_PATH, methodNotAllowed('OPTIONS, POST'));
  app.all(one, methodNotAllowed('OPTIONS, HEAD, GET, PATCH, DELETE'));
  // /health stays as an alias of /healthz.
  if (deps.ops) app.use(deps.ops);
  if (deps.multipart) app.use(deps.multipart);
  app.use(pageRouter(log));
  app.use('/api/uploads', cors(origins, API_CORS));
  if (deps.api) app.use(deps.api);

  app.use((_req, _res, next) => next(new TuspassError(ERRORS.ERR_NOT_FOUND)));
  // Every error the routes above pass on is answered by the one error responder (error-answer.ts),
  // in the form of the request's front: tus's text on /files, JSON (with "message") elsewhere.
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) =>
    answerError(req, res, err, { log }),
  );
  return app;
}
