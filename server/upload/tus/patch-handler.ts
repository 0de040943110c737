// PATCH /files/:id — tuspass's own, so the body streams from the socket into the store without the
// web-stream round trip @tus/server makes, and so the checksum extension can verify it on the way.
import type express from 'express';
import type { Locker, Upload } from '@tus/utils';
import type { Config } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { requestChecksum } from '../../hashing/checksum.ts';
import type { AppendOptions, ConcatInfo, UploadStore } from '../../backends/store/upload-store.ts';
import { expiresHeader, isExpired } from '../../pipeline/expiry.ts';
import { nonNegativeInteger } from '../../http/tus-headers.ts';
import { bytesReceived, uploadsFinished } from '../../ops/metrics.ts';
import { onBodyIdle } from '../../http/network-timeout.ts';
import { stoppable } from '../../http/stoppable-body.ts';
import { BodyInterrupted, markCut } from '../../http/dropped-requests.ts';
import { sendTus } from '../../http/tus-response.ts';
import type { HookResponse } from '../../../hooks/types.ts';
import { answerOf, httpRequestOf, type TusAnswer, type UploadEvents } from '../../pipeline/upload-events.ts';
import { withLock } from '../../backends/locker/upload-lock.ts';
import { HookRefusal, answerError } from '../../http/error-answer.ts';

export interface PatchDeps {
  config: Config;
  store: UploadStore;
  locker: Locker;
  events: UploadEvents;
  /** Least time between two post-receive notices of one upload, in ms. */
  postReceiveIntervalMs: number;
  log: (line: string) => void;
}

/** What one request appends: its offset, a length it declares, the checksum its body must match. */
export interface AppendAsk {
  offset: number;
  /** A length this request declares (tus creation-defer-length; the draft's Upload-Length or Upload-Complete: ?1). */
  declared?: number;
  checksum?: AppendOptions['checksum'];
  contentLength?: number;
  /**
   * The body is the upload's last: once it has arrived whole, the upload's length is the offset it
   * reached (the draft's Upload-Complete: ?1 on a body of unknown length).
   */
  lastBody?: boolean;
  /** Called with the offset as bytes are stored (the draft's 104 progress answers). */
  onStored?: (offset: number) => void;
  /** Runs once the request holds the upload's lock (and made it, with create), before a byte is read (the draft's 104
   * goes out then). */
  onLocked?: () => void;
  /** Runs once the upload is complete, before it is announced; throwing refuses the completion (the draft's
   * Repr-Digest). */
  beforeFinish?: (upload: Upload) => Promise<void>;
  /**
   * A creation with its body (tus creation-with-upload, the draft's creation): the upload is made
   * under its lock, as the first step (before onLocked), and not read back.
   */
  create?: () => Promise<{ upload: Upload; concat?: ConcatInfo }>;
  /**
   * Its client has no Location until the answer (tus creation-with-upload), so nothing of the upload
   * is left to resume: a body that goes idle is cut with its connection (no 408 to resume from), and
   * one past the upload's length refuses the request before the upload is announced.
   */
  locationUnsent?: boolean;
}

/** What an append did: the upload after it, the headers every answer carries, the completion's answer. */
export interface AppendDone {
  upload: Upload;
  /** The upload was complete before this request (a repeated last request): nothing was written. */
  alreadyComplete: boolean;
  complete: boolean;
  headers: Record<string, string>;
  /** The completion's answer (pre-finish hooks, the form) when this request completed the upload. */
  finished?: TusAnswer;
}

/** A 409's offsets, for answers that name them (the draft's mismatching-upload-offset). */
export interface OffsetMismatch {
  expected: number;
  provided: number;
}

/**
 * Appends one request's body to an upload, under its lock: the rules every append obeys, whatever
 * protocol asked (tus PATCH, the draft's PATCH and creation). Throws the error table's errors
 * (with the headers their answers carry); answers nothing itself.
 */
export async function appendRequest(
  deps: PatchDeps,
  req: express.Request,
  id: string,
  ask: AppendAsk,
): Promise<AppendDone> {
  const { config, store, locker, events } = deps;
  const { offset, checksum, contentLength } = ask;
  const declared = ask.declared;
  const http = httpRequestOf(req);
  let timedOut = false;
  // Cut because the server is stopping (SHUTDOWN_TIMEOUT passed), not because the body went idle.
  let shutdown = false;
  // MAX_SIZE, or the token's max_size when smaller (Infinity: no limit).
  const maxSize = maxSizeFor(config, req);

  // Another request wants the upload (a client resuming after its old connection died): a body
  // still arriving is cut, its bytes kept. A body that has arrived whole is written to the end
  // and answered; destroying it would drop the answer and every request pipelined behind it.
  const releaseIfUnfinished = () => {
    if (req.complete) return;
    markCut(req, 'taken_over');
    req.destroy();
  };
  const outcome = await withLock(locker, id, releaseIfUnfinished, async () => {
    const created = await ask.create?.();
    ask.onLocked?.();
    const upload = created?.upload ?? (await store.getUpload(id));
    /** A length this checksummed request declares, written once its body has matched. */
    let declaring: number | undefined;
    if (!created && (await isExpired(store, upload))) throw new TuspassError(ERRORS.ERR_UPLOAD_EXPIRED);
    const concat = created ? created.concat : await store.concatOf(id);
    // "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final
    // upload URL and MUST NOT modify the final or its partial uploads."
    if (concat?.kind === 'final') throw new TuspassError(ERRORS.ERR_FINAL_UPLOAD_READONLY);
    // "If the offsets do not match, the Server MUST respond with the 409 Conflict status without
    // modifying the upload resource."
    if (upload.offset !== offset) {
      const mismatch: OffsetMismatch = { expected: upload.offset, provided: offset };
      throw Object.assign(
        new TuspassError(ERRORS.ERR_OFFSET_MISMATCH, `sent ${offset}, upload is at ${upload.offset}`),
        { mismatch },
      );
    }
    // Complete already (a client repeating its last request): nothing to write or announce again.
    // (Created empty by this request: its body, which must be empty too, is checked below.)
    if (!created && upload.size !== undefined && upload.offset === upload.size) {
      if (declared !== undefined && declared !== upload.size)
        throw new TuspassError(ERRORS.ERR_LENGTH_INVALID, `already ${upload.size}`);
      return { upload, concat, exceeded: false, completedHere: false, alreadyComplete: true, stopped: undefined };
    }
    if (declared !== undefined) {
      // creation-defer-length: the length comes with a later PATCH and, once set, never changes.
      if (upload.size !== undefined && declared !== upload.size)
        throw new TuspassError(ERRORS.ERR_LENGTH_INVALID, `already ${upload.size}`);
      if (declared < upload.offset)
        throw new TuspassError(ERRORS.ERR_LENGTH_INVALID, `${declared} is below the offset ${upload.offset}`);
      if (declared > maxSize) throw maxSizeError(config, req, declared);
    }
    const size = declared ?? upload.size;
    const room =
      size !== undefined
        ? size - offset
        : Number.isFinite(maxSize)
          ? Math.max(0, maxSize - offset)
          : Number.MAX_SAFE_INTEGER;
    // Refused before a byte is read when the declared body cannot fit — and before the length it
    // declares is written: a refused request leaves the upload as it was (a length equal to the
    // offset would make it complete without anyone announcing it).
    if (contentLength !== undefined && contentLength > room)
      throw new TuspassError(ERRORS.ERR_SIZE_EXCEEDED, `${contentLength} bytes sent, ${room} left`);
    if (declared !== undefined && upload.size === undefined) {
      // A checksummed body declares its length only once it has matched: a refused body (460)
      // leaves nothing behind, not even the length it carried (declared below, after the append).
      if (checksum) declaring = declared;
      else await store.declareUploadLength(id, declared);
      upload.size = declared;
    }

    let lastNotice = Date.now();
    const onProgress = (now: number) => {
      ask.onStored?.(now);
      if (Date.now() - lastNotice < deps.postReceiveIntervalMs) return;
      lastNotice = Date.now();
      events.notify('post-receive', http, events.hookUpload({ ...upload, offset: now } as typeof upload, concat));
    };
    const body = stoppable(req);
    let stopped: HookResponse | undefined;
    const unregister = events.whileWriting(id, (answer) => {
      stopped = answer;
      body.stop();
    });
    // NETWORK_TIMEOUT: a body that stops arriving ends here like a short one; what came is kept
    // and its digest state saved, and the lock goes with the answer.
    // A stopping server cuts the body the same way once SHUTDOWN_TIMEOUT has passed.
    const noLongerIdle = ask.locationUnsent
      ? () => {}
      : onBodyIdle(req, (reason) => {
          timedOut = true;
          shutdown = reason === 'shutdown';
          body.stop();
        });
    try {
      const result = await store.append(body.source, id, offset, {
        limit: room,
        checksum,
        onProgress,
        size: upload.size,
        expected: contentLength,
        created: created !== undefined,
      });
      if (declaring !== undefined) await store.declareUploadLength(id, declaring);
      upload.offset = result.offset;
      bytesReceived.inc(result.offset - offset);
      // tusd's StopUpload: the PATCH ends with the hook's answer and the upload is terminated.
      if (stopped) await store.remove(id);
      // The last body, arrived whole: its end is the upload's length.
      else if (ask.lastBody && upload.size === undefined && req.complete && !timedOut && !result.exceeded) {
        if (upload.offset > maxSize) throw maxSizeError(config, req, upload.offset);
        await store.declareUploadLength(id, upload.offset);
        upload.size = upload.offset;
      }
      // Complete now: by bytes written, or by a length declared equal to the offset (an empty
      // last PATCH, as clients with a deferred length send when their stream ends).
      return { upload, concat, exceeded: result.exceeded, completedHere: true, alreadyComplete: false, stopped };
    } catch (e) {
      // A body whose connection went keeps what it brought (none of a checksummed one).
      if (e instanceof BodyInterrupted) bytesReceived.inc(e.kept);
      // ... and when that was every byte the upload was owed, the upload is complete all the same:
      // announced, though nobody hears this request's answer.
      if (e instanceof BodyInterrupted && e.kept > 0 && upload.size !== undefined && e.offset === upload.size) {
        upload.offset = e.offset;
        return { upload, concat, exceeded: false, completedHere: true, alreadyComplete: false, stopped, cut: e };
      }
      // A checksummed body cut short cannot be verified, so none of it was kept: still a timeout.
      if (timedOut && e instanceof TuspassError && e.code === ERRORS.ERR_CHECKSUM_MISMATCH.code) {
        throw Object.assign(
          new TuspassError(
            shutdown ? ERRORS.ERR_SHUTTING_DOWN : ERRORS.ERR_BODY_TIMEOUT,
            'none of this checksummed body is kept',
          ),
          { headers: { 'Upload-Offset': String(offset) } },
        );
      }
      throw e;
    } finally {
      unregister();
      noLongerIdle();
    }
  });

  const { upload, concat } = outcome;
  if (outcome.stopped) {
    // tusd's StopUpload: the hook's HTTPResponse, over tusd's ERR_UPLOAD_STOPPED 400 where it says nothing.
    const stopped = ERRORS.ERR_UPLOAD_STOPPED;
    const { status_code, body, headers } = answerOf(outcome.stopped, stopped.status);
    throw new HookRefusal(status_code ?? stopped.status, body || `${stopped.code}: ${stopped.message}\n`, headers);
  }
  const headers = { 'Upload-Offset': String(upload.offset), ...(await expiresHeader(store, upload)) };
  const complete = upload.size !== undefined && upload.offset === upload.size;
  const completedHere = outcome.completedHere && complete;
  if (completedHere) uploadsFinished.inc();
  // 408 with Connection: close (error-answer.ts, the body is unread): the client resumes from Upload-Offset.
  // 503 when the server is stopping: clients (tus-js-client) retry a 5xx, resuming once it is back.
  if (timedOut && !completedHere)
    throw Object.assign(
      new TuspassError(shutdown ? ERRORS.ERR_SHUTTING_DOWN : ERRORS.ERR_BODY_TIMEOUT, `kept ${upload.offset} bytes`),
      { headers },
    );
  // A creation's body past its length: refused whole (the creation route removes the upload).
  if (outcome.exceeded && ask.locationUnsent)
    throw new TuspassError(ERRORS.ERR_SIZE_EXCEEDED, `the body goes past the upload's ${upload.size ?? maxSize} bytes`);
  // The upload is announced when it completes, also by the bytes kept of a body that went past
  // its end (that request itself is still answered 413) — once the completion's own check (the
  // draft's Repr-Digest) holds for those bytes: a body past its end is no reason to skip it.
  if (completedHere) await ask.beforeFinish?.(upload);
  const finished = completedHere ? await events.finish(http, upload, concat) : undefined;
  // Its connection went after the last byte: announced above, and the request noted as dropped.
  if ('cut' in outcome && outcome.cut) throw outcome.cut;
  if (outcome.exceeded)
    throw Object.assign(new TuspassError(ERRORS.ERR_SIZE_EXCEEDED, `kept the first ${upload.offset} bytes`), {
      headers,
    });
  if (finished) {
    const { handled: _handled, ...answer } = finished;
    return { upload, alreadyComplete: false, complete, headers, finished: answer };
  }
  return { upload, alreadyComplete: outcome.alreadyComplete, complete, headers };
}

export function patchHandler(deps: PatchDeps): express.RequestHandler {
  return async (req, res) => {
    const id = String(req.params.id);
    try {
      // "The Upload-Offset header MUST be included" (a non-negative integer).
      const offset = nonNegativeInteger(req.get('upload-offset'));
      if (offset === undefined) throw new TuspassError(ERRORS.ERR_OFFSET_INVALID);
      const lengthHeader = req.get('upload-length');
      const declared = nonNegativeInteger(lengthHeader);
      if (lengthHeader !== undefined && declared === undefined) throw new TuspassError(ERRORS.ERR_LENGTH_INVALID);
      const checksum = await requestChecksum(req.get('upload-checksum'));
      const contentLength = nonNegativeInteger(req.get('content-length'));
      const { headers, finished } = await appendRequest(deps, req, id, { offset, declared, checksum, contentLength });
      if (finished)
        return sendTus(res, finished.status_code ?? 204, { ...headers, ...finished.headers }, finished.body);
      // "The Server MUST acknowledge successful PATCH requests with the 204 No Content status."
      sendTus(res, 204, headers);
    } catch (e) {
      answerError(req, res, e, { log: deps.log, form: 'tus' });
    }
  };
}
