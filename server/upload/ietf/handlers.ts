// The draft's operations on tuspass's pipeline: creation (POST to /files/ with the whole body, a
// part of it, or none), offset retrieval (HEAD), append (PATCH), cancellation (DELETE) and OPTIONS.
// No rule of its own: the offset, length, size, expiry, lock and hook rules are the tus PATCH's
// and DELETE's (appendRequest, terminateUpload); creation runs the same pre-create hook, owner
// announcement, store creation (free space, owner limits) and post-create as tus's (creation-handler.ts).
import type express from 'express';
import type { Upload } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { Log } from '../../../core/logger.ts';
import type { Config } from '../../config/config.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { terminateUpload } from '../tus/delete-handler.ts';
import { retryable, uploadForResume } from '../tus/head-handler.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { expiresAt } from '../../pipeline/expiry.ts';
import { appendRequest, type AppendAsk, type PatchDeps } from '../tus/patch-handler.ts';
import { newUpload } from '../tus/creation-handler.ts';
import type { UploadEvents } from '../../pipeline/upload-events.ts';
import { httpRequestOf } from '../../pipeline/upload-events.ts';
import { uploadUrl } from '../tus/upload-url.ts';
import { contentChecksum, reprDigestCheck } from './digests.ts';
import { dispositionFilename, sfBoolean, sfNonNegativeInteger, uploadLimit } from './fields.ts';
import { sendInterim } from './interim.ts';
import { sendDraft } from '../../http/draft-response.ts';
import { requestMetadata } from '../../http/tus-headers.ts';
import { completeField, INTEROP_HEADER, PARTIAL_UPLOAD_TYPE, type DraftVersion } from './versions.ts';

export interface DraftDeps extends PatchDeps {
  config: Config;
  store: UploadStore;
  events: UploadEvents;
  log: Log;
}

/** The version the router found on the request (routes.ts). */
export const versionOf = (res: express.Response): DraftVersion => res.locals.draftVersion as DraftVersion;

/** Least time between two progress 104 answers of one request. */
const PROGRESS_INTERVAL_MS = 1000;

/** Upload-Limit of this version: the caller's largest upload, and the upload's remaining lifetime. */
async function limitsOf(
  deps: DraftDeps,
  req: express.Request,
  version: DraftVersion,
  upload?: Upload,
): Promise<Record<string, string>> {
  if (!version.limitAgeKey) return {};
  const maxSize = maxSizeFor(deps.config, req);
  let age: number | undefined;
  if (upload) {
    const at = await expiresAt(deps.store, upload);
    if (at !== undefined) age = Math.max(0, Math.floor((at - Date.now()) / 1000));
  } else if (deps.store.getExpiration() > 0) age = Math.floor(deps.store.getExpiration() / 1000);
  const value = uploadLimit({ 'max-size': Number.isFinite(maxSize) ? maxSize : undefined, [version.limitAgeKey]: age });
  return value ? { 'Upload-Limit': value } : {};
}

/** Whether the request says it carries the last of the upload; a version's required field absent is 400. */
function completeness(req: express.Request, version: DraftVersion, required: boolean): boolean {
  const value = sfBoolean(req.get(version.completeHeader));
  if (value === undefined) {
    // Interop 3 appends: no Upload-Incomplete is the last append (-01 required the field on creation only).
    if (!required) return true;
    throw new TuspassError(ERRORS.ERR_DRAFT_COMPLETE_INVALID);
  }
  return version.completeHeader === 'Upload-Complete' ? value : !value;
}

/**
 * The length a request declares: Upload-Length, and the offset plus Content-Length of a last
 * request. "If indicators (1) and (2) are both present in the same request, their indicated
 * lengths MUST match" — otherwise inconsistent-upload-length.
 */
function declaredLength(req: express.Request, offset: number, last: boolean): number | undefined {
  const header = sfNonNegativeInteger(req.get('upload-length'));
  const contentLength = sfNonNegativeInteger(req.get('content-length'));
  const byContent = last && contentLength !== undefined ? offset + contentLength : undefined;
  if (header !== undefined && byContent !== undefined && header !== byContent) {
    throw new TuspassError(ERRORS.ERR_LENGTH_INVALID, `Upload-Length ${header}, the last body ends at ${byContent}`);
  }
  return header ?? byContent;
}

/** 104 progress answers (Upload-Offset) while a body arrives, where the version has them. */
function progressInterim(req: express.Request, res: express.Response, version: DraftVersion): AppendAsk['onStored'] {
  if (!version.progress) return undefined;
  let last = Date.now();
  return (offset) => {
    if (Date.now() - last < PROGRESS_INTERVAL_MS) return;
    last = Date.now();
    sendInterim(req, res, { [INTEROP_HEADER]: String(version.interop), 'Upload-Offset': String(offset) });
  };
}

/** The request's metadata: tus-js-client's Upload-Metadata, Content-Disposition's filename, Content-Type. */
function metadataOf(req: express.Request): Record<string, string | null> {
  const meta = requestMetadata(req.get('upload-metadata')) ?? Object.create(null);
  const filename = dispositionFilename(req.get('content-disposition'));
  if (filename !== undefined) meta.filename = filename;
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type && type !== PARTIAL_UPLOAD_TYPE && type !== 'application/offset+octet-stream' && meta.filetype === undefined)
    meta.filetype = type;
  return meta;
}

/** The answer to the request that completed an upload: the completion's (the form's), marked complete. */
function sendCompleted(
  res: express.Response,
  version: DraftVersion,
  status: number,
  headers: Record<string, string>,
  answer: { status_code?: number; headers?: Record<string, string>; body?: string },
): void {
  // "the server SHOULD generate the response that matches what the resource ... would have generated":
  // the completion form's answer (a pre-finish hook's), else the route's own.
  sendDraft(
    res,
    answer.status_code ?? status,
    { ...headers, ...answer.headers, ...completeField(version, true) },
    answer.body,
  );
}

export function createUpload(deps: DraftDeps): express.RequestHandler {
  const { config, store } = deps;
  return async (req, res, next) => {
    try {
      const version = versionOf(res);
      const last = completeness(req, version, true);
      const declared = declaredLength(req, 0, last);
      if (declared !== undefined && declared > maxSizeFor(config, req)) throw maxSizeError(config, req, declared);
      // Both digest fields are read before anything is made: a malformed one creates nothing.
      const checksum = await contentChecksum(req);
      const checkRepr = reprDigestCheck(req, store);
      // An empty upload is complete only once announced by its (empty) last request, below.
      const size = declared === 0 ? undefined : declared;
      const { upload, create } = await newUpload(deps, req, res, httpRequestOf(req), {
        size,
        metadata: metadataOf(req),
      });
      const location = uploadUrl(req, upload.id);
      let limits: Record<string, string> = {};
      const made = async () => {
        await create();
        limits = await limitsOf(deps, req, version, upload);
        return { upload };
      };
      // "the server SHOULD announce the upload resource by sending an interim response with the
      // 104 (Upload Resumption Supported) status code ... it MUST include Location". Sent once the
      // body's append holds the upload's lock (and made it): a client that resumes from this
      // Location is then told an offset the cut creation can no longer move.
      const announce = () =>
        void sendInterim(req, res, { [INTEROP_HEADER]: String(version.interop), Location: location, ...limits });
      const contentLength = sfNonNegativeInteger(req.get('content-length'));
      const bodyless =
        contentLength === 0 || (contentLength === undefined && req.headers['transfer-encoding'] === undefined);
      if (bodyless && !last) {
        await made();
        announce();
        const headers = { Location: location, ...limits };
        return sendDraft(res, 201, { ...headers, 'Upload-Offset': '0', ...completeField(version, false) });
      }
      const done = await appendRequest(deps, req, upload.id, {
        offset: 0,
        create: made,
        onLocked: announce,
        declared: last ? (declared ?? (bodyless ? 0 : undefined)) : declared,
        checksum,
        contentLength: bodyless ? 0 : contentLength,
        lastBody: last,
        onStored: progressInterim(req, res, version),
        beforeFinish: checkRepr,
      });
      const all = { Location: location, ...limits, ...done.headers };
      if (done.finished) return sendCompleted(res, version, 201, all, done.finished);
      sendDraft(res, 201, { ...all, ...completeField(version, done.complete) });
    } catch (e) {
      next(e);
    }
  };
}

export function appendUpload(deps: DraftDeps): express.RequestHandler {
  return async (req, res, next) => {
    try {
      const version = versionOf(res);
      const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (version.partialUploadType && type !== PARTIAL_UPLOAD_TYPE)
        throw new TuspassError(ERRORS.ERR_DRAFT_CONTENT_TYPE);
      // "The client MUST indicate the offset of the request content ... by including the Upload-Offset header field."
      const offset = sfNonNegativeInteger(req.get('upload-offset'));
      if (offset === undefined) throw new TuspassError(ERRORS.ERR_OFFSET_INVALID);
      const last = completeness(req, version, version.interop > 3);
      const contentLength = sfNonNegativeInteger(req.get('content-length'));
      const done = await appendRequest(deps, req, String(req.params.id), {
        offset,
        declared: declaredLength(req, offset, last),
        checksum: await contentChecksum(req),
        contentLength,
        lastBody: last,
        onStored: progressInterim(req, res, version),
        beforeFinish: reprDigestCheck(req, deps.store),
      });
      // "If the upload is already complete, the server MUST NOT modify the upload resource and MUST
      // reject the request": a non-empty body is an inconsistent length, an empty one completed-upload.
      if (done.alreadyComplete) {
        if (contentLength !== 0)
          throw new TuspassError(ERRORS.ERR_LENGTH_INVALID, `the upload is complete at ${done.upload.offset} bytes`);
        throw new TuspassError(ERRORS.ERR_DRAFT_UPLOAD_COMPLETED);
      }
      if (done.finished) return sendCompleted(res, version, 204, done.headers, done.finished);
      sendDraft(res, 204, { ...done.headers, ...completeField(version, done.complete) });
    } catch (e) {
      next(e);
    }
  };
}

export function offsetOf(deps: DraftDeps): express.RequestHandler {
  const { store, locker } = deps;
  return async (req, res, next) => {
    try {
      const version = versionOf(res);
      const id = String(req.params.id);
      // As tus's HEAD reads it: a stale append lets go first ("the server MUST NOT send outdated
      // information in responses when retrieving the offset"), and the lock service away is no reason
      // to answer anything a client reads as "start over".
      const { upload } = await uploadForResume(store, locker, id);
      const complete = upload.size !== undefined && upload.offset === upload.size;
      const headers: Record<string, string> = {
        'Upload-Offset': String(upload.offset),
        ...completeField(version, complete),
        ...(upload.size !== undefined && { 'Upload-Length': String(upload.size) }),
        ...(complete ? {} : await limitsOf(deps, req, version, upload)),
        'Cache-Control': 'no-store',
      };
      sendDraft(res, 204, headers);
    } catch (e) {
      next(retryable(e));
    }
  };
}

export function cancelUpload(deps: DraftDeps): express.RequestHandler {
  return async (req, res, next) => {
    try {
      await terminateUpload(deps, req, String(req.params.id));
      sendDraft(res, 204);
    } catch (e) {
      next(e);
    }
  };
}

/** OPTIONS: "the server MUST include the Accept-Patch header field"; Upload-Limit "SHOULD be included". */
export function draftOptions(deps: DraftDeps): express.RequestHandler {
  return async (req, res, next) => {
    try {
      const version = versionOf(res);
      sendDraft(res, 204, { 'Accept-Patch': PARTIAL_UPLOAD_TYPE, ...(await limitsOf(deps, req, version)) });
    } catch (e) {
      next(e);
    }
  };
}
