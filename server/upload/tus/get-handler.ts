// GET /files/:id — the bytes of a finished upload. tuspass's own, not @tus/server's: that one hands
// a node file stream to the client through web streams, and on Node 20 a kept-alive connection
// fetching more than 64 KiB closed the web stream twice and took the process down
// (ERR_INVALID_STATE from a microtask, where no handler can catch it). The answer is the one every
// download gets (server/http/download.ts: ranges, validators, the name), /api/uploads/:id/file's too.
import type express from 'express';
import { ERRORS as TUS_ERRORS, type Upload } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { sendDownload, type DownloadSource } from '../../http/download.ts';
import { corsHeaders } from '../../http/tus-response.ts';
import { TUS_PATH, TUS_VERSION } from '../../http/tus-headers.ts';
import { withReadLock, type UploadLocker } from '../../backends/locker/upload-lock.ts';
import { answerError } from '../../http/error-answer.ts';

const finished = (u: Upload) => u.size !== undefined && u.offset === u.size;

/** Missing, removed or never finished: @tus/server's errors for these become ours. */
function notFound(e: unknown): never {
  if (
    e === TUS_ERRORS.FILE_NOT_FOUND ||
    e === TUS_ERRORS.FILE_NO_LONGER_EXISTS ||
    (e as NodeJS.ErrnoException)?.code === 'ENOENT'
  ) {
    throw new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND);
  }
  throw e;
}

export function getHandler(
  store: UploadStore,
  locker: UploadLocker,
  log: (line: string) => void,
): express.RequestHandler {
  return async (req, res) => {
    // Undefined on the collection URL, which names no upload.
    const id = req.params.id as string | undefined;
    let file: DownloadSource | undefined;
    try {
      if (id === undefined) throw new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND);
      // Unfinished uploads are not served (as @tus/server did; tusd serves the bytes so far): a
      // download that is not the whole file would pass for it. Answered without the lock, so a GET
      // never asks a running PATCH to stop.
      if (!finished(await store.getUpload(id).catch(notFound))) throw new TuspassError(ERRORS.ERR_UPLOAD_UNFINISHED);
      // S3_DOWNLOAD_REDIRECT: the client fetches the object from S3 itself, with a URL that expires.
      const redirect = await store.downloadUrl?.(id);
      if (redirect) {
        for (const [name, value] of Object.entries({
          ...corsHeaders(),
          'Tus-Resumable': TUS_VERSION,
          'Cache-Control': 'no-store',
        }))
          res.setHeader(name, value);
        return res.redirect(302, redirect);
      }
      // Under the lock, a checksummed PATCH that wrote the last bytes has verified them (or cut them
      // off) and a DELETE has finished. The file is opened before the lock is let go: a DELETE from
      // then on unlinks it, and this open file still reads to the end. (While the lock service is away
      // it is read without the lock, as a HEAD is: no write or DELETE goes ahead then.)
      const { upload, modified } = await withReadLock(locker, id, async () => {
        const again = await store.getUpload(id).catch(notFound);
        if (!finished(again)) throw new TuspassError(ERRORS.ERR_UPLOAD_UNFINISHED);
        const opened = await store.openFinished(id).catch(notFound);
        file = opened.file;
        if (opened.size !== again.size) throw new TuspassError(ERRORS.ERR_UPLOAD_UNFINISHED);
        return { upload: again, modified: opened.modified };
      });
      const opened = file!;
      file = undefined;
      for (const [name, value] of Object.entries({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION }))
        res.setHeader(name, value);
      const { filename, filetype } = upload.metadata ?? {};
      const naming = {
        name: filename ?? undefined,
        contentType: filetype ?? undefined,
        disposition: 'by-type',
      } as const;
      await sendDownload(req, res, { file: opened, size: upload.size!, modified, ...naming }, (err) =>
        log(`tus GET ${TUS_PATH}/${id}: ${err.message}`),
      );
    } catch (e) {
      await file?.close().catch(() => {});
      answerError(req, res, e, { log, form: 'tus' });
    }
  };
}
