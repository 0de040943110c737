// The draft on the tus endpoint: requests carrying Upload-Draft-Interop-Version are served here by
// the rules of the version they name; every other request goes on to the tus routes untouched.
// The same gates as tus's, in the same order: CORS, the canonical path, the method override, the
// bearer token and its scope, the access step (the upload's owner, the pre-access hook), the caller's
// size limit and the creation gate.
import express from 'express';
import type { Locker } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { authenticate, maxSizeFor, tusScope } from '../../auth/middleware.ts';
import { cors, corsPolicy } from '../../http/cors.ts';
import { getHandler } from '../tus/get-handler.ts';
import { applyMethodOverride, creationLimit } from '../tus/protocol-guards.ts';
import type { UploadAccess } from '../../pipeline/upload-access.ts';
import { tusPathForm } from '../tus/upload-url.ts';
import { uploadLimit } from './fields.ts';
import { appendUpload, cancelUpload, createUpload, draftOptions, offsetOf, type DraftDeps } from './handlers.ts';
import { draftVersionOf, INTEROP_HEADER, type DraftVersion } from './versions.ts';
import { answerError, knownError, servedAsDraft } from '../../http/error-answer.ts';

export interface DraftRouteDeps extends DraftDeps {
  locker: Locker;
  /** The access step, as on tus (upload-access.ts). */
  access: UploadAccess;
  /** The creation gate (admission.ts), as on tus creations. */
  admission?: express.RequestHandler;
}

const tooLarge = (err: unknown) => {
  const known = knownError(err);
  return known instanceof TuspassError && known.status === 413;
};

const methodNotAllowed =
  (allow: string): express.RequestHandler =>
  (_req, res, next) => {
    res.set('Allow', allow);
    next(new TuspassError(ERRORS.ERR_METHOD_NOT_ALLOWED));
  };

export function draftRoutes(deps: DraftRouteDeps): express.Router {
  const router = express.Router({ caseSensitive: false });
  router.use((req, res, next) => {
    const version = draftVersionOf(req.get(INTEROP_HEADER));
    // No draft named, or one not served on a request that also speaks tus: the tus routes' request.
    if (version === undefined || (version === null && req.get('tus-resumable') !== undefined)) return next('router');
    // The draft's request from here on: its errors are answered as problem details (error-answer.ts).
    servedAsDraft(res, version);
    // A version this server does not serve: refused, and never a 104 ("Server implementations ...
    // MUST NOT send a 104 (Upload Resumption Supported) informational response when the interop
    // version ... is missing or mismatching").
    if (version === null) return next(new TuspassError(ERRORS.ERR_DRAFT_VERSION_UNSUPPORTED));
    res.locals.draftVersion = version;
    next();
  });
  router.use(cors(corsPolicy(deps.config.corsOrigins)));
  // Upload ids have one spelling (upload-url.ts), as on the tus routes.
  router.use((req, _res, next) => {
    if (req.method === 'OPTIONS') return next();
    const form = tusPathForm(req.originalUrl);
    if (form === 'canonical') return next();
    next(new TuspassError(form === 'undecodable' ? ERRORS.ERR_URL_INVALID : ERRORS.ERR_UPLOAD_NOT_FOUND));
  });
  // X-HTTP-Method-Override as on tus: tus-js-client's overridePatchMethod sends its draft appends as
  // POST to the upload, and a mistyped override must not create an upload.
  router.use((req, res, next) => next(applyMethodOverride(req, res)));
  router.use(authenticate(deps.config, tusScope));
  router.all('/:id', deps.access.middleware());
  router.options(['/', '/:id'], draftOptions(deps));
  router.post('/', creationLimit(deps.config));
  if (deps.admission) router.post('/', deps.admission);
  router.post('/', createUpload(deps));
  router.head('/:id', offsetOf(deps));
  router.patch('/:id', appendUpload(deps));
  router.delete('/:id', cancelUpload(deps));
  // The draft defines no GET; a finished upload downloads as on the tus route.
  router.get('/:id', getHandler(deps.store, deps.locker, deps.log));
  router.all('/', methodNotAllowed('OPTIONS, POST'));
  router.all('/:id', methodNotAllowed('OPTIONS, HEAD, GET, PATCH, DELETE'));
  router.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    // "A server responding with a 413 Content Too Large status code as a result of its upload
    // limits MUST include the Upload-Limit header in this response."
    const version = res.locals.draftVersion as DraftVersion | undefined;
    const maxSize = maxSizeFor(deps.config, req);
    if (version?.limitAgeKey && tooLarge(err) && Number.isFinite(maxSize) && !res.headersSent)
      res.set('Upload-Limit', uploadLimit({ 'max-size': maxSize })!);
    answerError(req, res, err, { log: deps.log });
  });
  return router;
}
