// What becomes of a creation's answer, which @tus/server writes: its Upload-Expires (the store's
// rule), a refused creation's upload (removed), a creation-with-upload cut mid-body (removed, noted
// as dropped).
import type { ServerResponse } from 'node:http';
import type express from 'express';
import { ERRORS, TuspassError } from '../../../../core/errors.ts';
import { errorText, type Log } from '../../../../core/logger.ts';
import { answerLost, BodyInterrupted, noteDropped } from '../../../http/dropped-requests.ts';
import type { UploadStore } from '../../../backends/store/upload-store.ts';
import { expiresAt } from '../../../backends/store/stored-upload.ts';
import { httpDate } from '../../../http/tus-headers.ts';
import type { Creation } from './creations.ts';

/**
 * @tus/server dates a creation's Upload-Expires EXPIRE_AFTER after the creation (and sends none with
 * EXPIRE_AFTER=0); the store's rule decides (store/stored-upload.ts expiresAt: an upload that
 * received no byte expires after EXPIRE_UNSTARTED_AFTER). "If the expiration is known at the
 * creation, the Upload-Expires header MUST be included in the response to the initial POST request."
 * srvx writes @tus/server's answer with writeHead(status, statusText, rawHeaders).
 */
export function creationExpiry(creation: Creation, res: ServerResponse, store: UploadStore): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, status: number, ...rest: unknown[]) {
    const raw = rest.find(Array.isArray) as string[] | undefined;
    const made = creation.made;
    if (status === 201 && raw && made) {
      const named = (name: string) => raw.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === name);
      const at = named('upload-offset');
      const offset = at < 0 ? 0 : Number(raw[at + 1]);
      const expires = expiresAt(made.upload, { size: offset, mtimeMs: Date.now() }, store.expiry);
      const i = named('upload-expires');
      if (i >= 0) raw.splice(i, 2);
      // Whole seconds, rounded up: the header never says "expired" too early.
      if (expires !== undefined) raw.push('Upload-Expires', httpDate(Math.ceil(expires / 1000) * 1000));
    }
    return (writeHead as (...args: unknown[]) => ServerResponse).call(this, status, ...rest);
  } as typeof res.writeHead;
}

/**
 * A creation-with-upload whose body did not match its checksum keeps the upload it created, at
 * offset 0 (as a PATCH leaves the offset unchanged; tusd does the same) — unless that upload is
 * complete as created (Upload-Length: 0): kept, it would be a finished upload no client was told of.
 */
export function keptAfterMismatch(creation: Creation | undefined, e: unknown): boolean {
  const mismatch = e instanceof TuspassError && e.code === ERRORS.ERR_CHECKSUM_MISMATCH.code;
  return mismatch && creation?.made !== undefined && creation.made.upload.size !== 0;
}

/**
 * A creation refused once its upload was made — its body past Upload-Length or the maximum size
 * (@tus/server checks both only after creating), the store full, a failing disk — is answered with
 * no Location: its client cannot resume that upload, so it goes, and with it the place it took in
 * its owner's count and the space it was owed (it would otherwise hold them until it expired).
 * Kept: a checksum mismatch's (answered with its Location), and a complete upload whose completion
 * failed (handled again). A body whose connection went goes too: its client never got the Location.
 */
export async function dropRefusedCreation(
  store: UploadStore,
  creation: Creation | undefined,
  e: unknown,
  log: Log,
): Promise<unknown> {
  const made = creation?.made;
  if (!made || creation.finishing) return e;
  if (keptAfterMismatch(creation, e)) return e;
  await store
    .remove(made.upload.id)
    .catch((failure: unknown) =>
      log(`tus POST: removing upload ${made.upload.id} of a refused creation: ${errorText(failure)}`),
    );
  // A body whose connection went: said as what it is, nothing of it kept.
  return e instanceof BodyInterrupted ? new BodyInterrupted(e.uploadId, e.received, 0, 0, e.logDetail ?? e.message) : e;
}

/**
 * A creation whose connection went before its answer: in the middle of its body (@tus/server ends the
 * body there as if it were whole, its abort handler, keeps what was written and "answers" 201 to no
 * one), or while pre-create ran or the upload was made (its request, bodiless or whole, was complete).
 * Its client never got the Location, so nobody can resume that upload (tus-js-client creates a new
 * one): it goes, and with it the place it took in its owner's count (OWNER_MAX_OPEN) and the space it
 * was owed — kept, it would hold them until EXPIRE_AFTER. Said and counted as the dropped request it is.
 */
export async function noteCutCreation(
  store: UploadStore,
  creation: Creation | undefined,
  req: express.Request,
  res: express.Response,
  log: Log,
): Promise<void> {
  if (!answerLost(req, res)) return;
  const id = creation?.made?.upload.id;
  if (id === undefined) return void noteDropped(req, res, new TuspassError(ERRORS.ERR_UPLOAD_INTERRUPTED), log, true);
  const upload = await store.getUpload(id).catch(() => undefined);
  const received = upload?.offset ?? 0;
  // Complete all the same (the bytes it was owed came before the cut): finished and announced, kept.
  if (creation?.finishing || (upload?.size !== undefined && upload.offset === upload.size)) {
    return void noteDropped(
      req,
      res,
      new BodyInterrupted(id, received, received, received, 'the request body ended early'),
      log,
      true,
    );
  }
  await store
    .remove(id)
    .catch((failure: unknown) => log(`tus POST: removing upload ${id} of a cut creation: ${errorText(failure)}`));
  const gone = req.complete
    ? new TuspassError(ERRORS.ERR_UPLOAD_INTERRUPTED, undefined, `upload ${id} removed: nobody got its Location`)
    : new BodyInterrupted(id, received, 0, 0, 'the request body ended early');
  noteDropped(req, res, gone, log, false);
}
