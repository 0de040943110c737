// POST /files/ — tus creation (plain, partial, creation-defer-length) and creation-with-upload,
// tuspass's own. The body of a creation-with-upload is appended as a PATCH's is (appendRequest:
// the lock, the checksum, the limits, post-receive, the completion), the upload being made under
// that lock first, as the draft's creation does. Final concatenations are final-handler.ts's; the
// header rules every creation obeys run before this (protocol-guards.ts creationHeaders,
// creationLimit; admission.ts).
import crypto from 'node:crypto';
import type express from 'express';
import { Upload } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { errorText } from '../../../core/logger.ts';
import { uploadOwnerOf } from '../../auth/upload-owner.ts';
import type { ConcatInfo, UploadStore } from '../../backends/store/upload-store.ts';
import { withLock } from '../../backends/locker/upload-lock.ts';
import { requestChecksum } from '../../hashing/checksum.ts';
import { answerLost, BodyInterrupted, noteDropped } from '../../http/dropped-requests.ts';
import { answerError, knownError } from '../../http/error-answer.ts';
import { nonNegativeInteger, requestMetadata } from '../../http/tus-headers.ts';
import { sendTus } from '../../http/tus-response.ts';
import { uploadsCreated, uploadsFinished } from '../../ops/metrics.ts';
import { createdExpiresHeader } from '../../pipeline/expiry.ts';
import type { HookHTTPRequest } from '../../../hooks/types.ts';
import { httpRequestOf, type TusAnswer } from '../../pipeline/upload-events.ts';
import { appendRequest, type PatchDeps } from './patch-handler.ts';
import { concatRoleOf } from './protocol-guards.ts';
import { uploadUrl } from './upload-url.ts';

/** What a creation made so far, for its answer and for what becomes of it when it is refused. */
interface Made {
  upload: Upload;
  location: string;
  /** Complete and handed to the completion: an error from there is the completion's, handled again later. */
  finishing: boolean;
}

/** The length a creation declares: Upload-Length, or undefined for Upload-Defer-Length: 1. */
function declaredSize(req: express.Request, store: UploadStore): number | undefined {
  const length = req.get('upload-length');
  const deferred = req.get('upload-defer-length') !== undefined;
  // "The Client MUST include either the Upload-Length or the Upload-Defer-Length header" — one of them.
  if ((length === undefined) === !deferred) throw new TuspassError(ERRORS.ERR_LENGTH_REQUIRED);
  if (deferred && !store.hasExtension('creation-defer-length')) throw new TuspassError(ERRORS.ERR_LENGTH_REQUIRED);
  return length === undefined ? undefined : nonNegativeInteger(length);
}

/** creation-with-upload: "The Client MAY include ... Content-Type: application/offset+octet-stream". */
const carriesBody = (req: express.Request) =>
  (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase() === 'application/offset+octet-stream';

/** A creation pre-create has let through: the upload as it will be made, and what makes it. */
export interface NewUpload {
  upload: Upload;
  /** The store's creation (free space, owner limits: 507, 429), then post-create. */
  create(): Promise<void>;
}

/**
 * What every creation route does before its upload exists (tus's and the draft's; finals pass their
 * parts first, final-handler.ts): a proposed upload, then pre-create, which may refuse, change the
 * metadata or choose the id (ChangeFileInfo). A client that left while the hook ran gets nothing
 * made: nobody would get the Location.
 */
export async function newUpload(
  { config, store, events }: Pick<PatchDeps, 'config' | 'store' | 'events'>,
  req: express.Request,
  res: express.Response,
  http: HookHTTPRequest,
  { size, metadata }: { size: number | undefined; metadata: Upload['metadata'] },
  concat?: ConcatInfo,
): Promise<NewUpload> {
  const proposed = new Upload({ id: crypto.randomBytes(16).toString('hex'), size, offset: 0, metadata });
  const chosen = await events.preCreate(http, proposed, concat);
  if (answerLost(req, res)) throw new TuspassError(ERRORS.ERR_UPLOAD_INTERRUPTED, undefined, 'left during pre-create');
  const upload = new Upload({ id: chosen.id, size, offset: 0, metadata: chosen.metadata });
  // The creating subject owns the upload (plain and partial; finals in final-handler.ts).
  const owner = uploadOwnerOf(req, config.behindProxy);
  return {
    upload,
    async create() {
      await store.create(upload, { owner, concat });
      uploadsCreated.inc();
      events.created(req, upload, concat);
    },
  };
}

export function creationHandler(deps: PatchDeps): express.RequestHandler {
  const { store, events, log } = deps;
  return async (req, res) => {
    let made: Made | undefined;
    try {
      const size = declaredSize(req, store);
      const concat: ConcatInfo | undefined = concatRoleOf(req) === 'partial' ? { kind: 'partial' } : undefined;
      const metadata = requestMetadata(req.get('upload-metadata'));
      const withBody = carriesBody(req);
      // Its body is checked against Upload-Checksum as a PATCH's is: a malformed header is 400
      // before anything is created, a mismatch 460 with nothing of the body kept.
      const checksum = withBody ? await requestChecksum(req.get('upload-checksum')) : undefined;
      const http = httpRequestOf(req);
      const { upload, create: createNew } = await newUpload(deps, req, res, http, { size, metadata }, concat);
      const creation: Made = { upload, location: uploadUrl(req, upload.id), finishing: false };
      const create = async () => {
        await createNew();
        made = creation;
        return { upload, concat };
      };
      let headers: Record<string, string>;
      let finished: TusAnswer | undefined;
      if (withBody) {
        const done = await appendRequest(deps, req, upload.id, {
          offset: 0,
          checksum,
          contentLength: nonNegativeInteger(req.get('content-length')),
          create,
          locationUnsent: true,
          beforeFinish: async () => void (creation.finishing = true),
        });
        headers = done.headers;
        finished = done.finished;
      } else {
        await create();
        // Upload-Length: 0 is complete as created.
        if (size === 0) {
          creation.finishing = true;
          uploadsFinished.inc();
          const { handled: _handled, ...answer } = await events.finish(http, upload, concat);
          finished = answer;
        }
        headers = size === 0 ? {} : createdExpiresHeader(store, upload);
      }
      // The client went meanwhile: an unfinished upload nobody got the Location of goes (below); a
      // complete one was announced, and stays.
      if (answerLost(req, res)) {
        const why = creation.finishing ? 'complete and announced' : 'nobody got its Location';
        const lost = new TuspassError(ERRORS.ERR_UPLOAD_INTERRUPTED, undefined, `upload ${upload.id}: ${why}`);
        if (!creation.finishing) throw lost;
        return void noteDropped(req, res, lost, log, true);
      }
      // "The Server MUST acknowledge a successful upload creation with the 201 Created status" — kept when
      // the completion answered 2xx; its refusals and redirects are relayed, Location with 201 or a redirect.
      const status = finished?.status_code !== undefined && finished.status_code >= 300 ? finished.status_code : 201;
      const location: Record<string, string> = status < 400 ? { Location: creation.location } : {};
      sendTus(res, status, { ...headers, ...finished?.headers, ...location }, finished?.body);
    } catch (e) {
      answerError(req, res, await refusedCreation(deps, made, e), { log, form: 'tus' });
    }
  };
}

/**
 * A creation refused once its upload was made — its body past Upload-Length or the maximum size,
 * the store full, a failing disk, its client gone — is answered with no Location: its client cannot
 * resume that upload, so it goes, and with it the place it took in its owner's count and the space
 * it was owed (it would otherwise hold them until it expired). Kept: the upload of a body that
 * failed its checksum (answered with its Location, at offset 0, as a PATCH leaves its offset; tusd
 * does the same) unless it is complete as created (Upload-Length: 0: kept, it would be a finished
 * upload no client was told of), and a complete upload whose completion failed (handled again).
 */
async function refusedCreation(
  { store, locker, log }: PatchDeps,
  made: Made | undefined,
  e: unknown,
): Promise<unknown> {
  if (!made || made.finishing) return e;
  const { upload } = made;
  const mismatch = e instanceof TuspassError && e.code === ERRORS.ERR_CHECKSUM_MISMATCH.code;
  if (mismatch && upload.size !== 0) return Object.assign(e, { headers: { Location: made.location } });
  // Under the upload's lock, as every removal: a DELETE that took it from the body's append (a
  // hook-chosen id) removes the upload first, and finds it whole.
  const remove = () =>
    withLock(
      locker,
      upload.id,
      () => {},
      () => store.remove(upload.id),
    );
  await remove().catch((failure: unknown) => {
    // Gone already: a DELETE, or a post-receive hook's StopUpload, removed it.
    const known = knownError(failure);
    if (!(known instanceof TuspassError && known.code === ERRORS.ERR_UPLOAD_NOT_FOUND.code))
      log(`tus POST: removing upload ${upload.id} of a refused creation: ${errorText(failure)}`);
  });
  // A body whose connection went: said as what it is, nothing of it kept.
  return e instanceof BodyInterrupted ? new BodyInterrupted(upload.id, e.received, 0, 0, e.logDetail ?? e.message) : e;
}
