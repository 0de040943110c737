// DELETE /files/:id — termination, tuspass's own. @tus/server's checked whether the upload was
// finished before it took the upload's lock, so a DELETE racing the last PATCH could remove a file
// that the PATCH had just finished and that was recorded a moment later. Here the check, the
// pre-terminate hook and the removal all happen under the lock the PATCH holds while it writes.
import type express from 'express';
import { Upload, type Locker } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { Log } from '../../../core/logger.ts';
import { uploadsTerminated } from '../../ops/metrics.ts';
import { requestIdOf } from '../../http/request-id.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { sendTus } from '../../http/tus-response.ts';
import { httpRequestOf, type UploadEvents } from '../../pipeline/upload-events.ts';
import { withLock } from '../../backends/locker/upload-lock.ts';
import { answerError } from '../../http/error-answer.ts';

export interface DeleteDeps {
  store: UploadStore;
  locker: Locker;
  events: UploadEvents;
  log: Log;
}

const finished = (u: Upload) => u.size !== undefined && u.offset === u.size;

/**
 * Removes an unfinished upload: the finished check, pre-terminate and the removal under its lock,
 * then post-terminate. Throws the error table's errors (or a hook's refusal); answers nothing.
 */
export async function terminateUpload(deps: DeleteDeps, req: express.Request, id: string): Promise<void> {
  const { store, locker, events, log } = deps;
  const http = httpRequestOf(req);
  // Taking the lock asks a PATCH still receiving a body to stop (its bytes are kept until removed here).
  await withLock(
    locker,
    id,
    () => {},
    async () => {
      const upload = await store.getUpload(id);
      // A finished upload has been (or is being) announced and recorded: removing its file would
      // leave the record dangling. It goes with its record (DELETE /api/uploads/<id>). Partials
      // stay removable: they are never recorded, only their final is.
      if (finished(upload) && (await store.concatOf(id))?.kind !== 'partial')
        throw new TuspassError(ERRORS.ERR_UPLOAD_FINISHED);
      await events.preTerminate(http, upload);
      await store.remove(id);
    },
  );
  uploadsTerminated.inc();
  log(`upload ${id} terminated`, { event: 'upload.terminated', upload_id: id, request_id: requestIdOf(req) });
  events.notify(
    'post-terminate',
    http,
    events.hookUpload(new Upload({ id, offset: 0, metadata: {} }), undefined, false),
  );
}

export function deleteHandler(deps: DeleteDeps): express.RequestHandler {
  return async (req, res) => {
    try {
      await terminateUpload(deps, req, String(req.params.id));
      // "The Server MUST respond with the 204 No Content status" on a successful termination.
      sendTus(res, 204);
    } catch (e) {
      answerError(req, res, e, { log: deps.log, form: 'tus' });
    }
  };
}
