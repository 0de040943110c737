// GET /files/:id — the bytes of a finished upload. tuspass's own, not @tus/server's: that one hands
// a node file stream to the client through web streams, and on Node 20 a kept-alive connection
// fetching more than 64 KiB closed the web stream twice and took the process down
// (ERR_INVALID_STATE from a microtask, where no handler can catch it). Here a node stream goes to
// the response through stream.pipeline, so a file removed mid-read or a client gone reaches one callback.
import fsp from 'node:fs/promises';
import { pipeline } from 'node:stream';
import type express from 'express';
import { ERRORS as TUS_ERRORS, type Upload } from '@tus/utils';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { DigestFileStore } from './digest-store.ts';
import { corsHeaders, sendTusError } from './tus-response.ts';
import { TUS_PATH, TUS_VERSION } from './tus-headers.ts';
import { withReadLock, type UploadLocker } from './upload-lock.ts';

/** RFC 1341 media types with parameters (as @tus/server checks `filetype` before using it). */
const MEDIA_TYPE =
  /^(?:application|audio|example|font|haptics|image|message|model|multipart|text|video|x-(?:[0-9A-Za-z!#$%&'*+.^_`|~-]+))\/([0-9A-Za-z!#$%&'*+.^_`|~-]+)((?:[ \t]*;[ \t]*[0-9A-Za-z!#$%&'*+.^_`|~-]+=(?:[0-9A-Za-z!#$%&'*+.^_`|~-]+|"(?:[^"\\]|\.)*"))*)$/;

/**
 * Types a browser may show in place (@tus/server's list). Everything else is an attachment: HTML or
 * SVG could run script on this origin, and PDF readers are a common target.
 */
const INLINE_TYPES = new Set([
  'text/plain', 'image/png', 'image/jpeg', 'image/gif', 'image/bmp', 'image/webp',
  'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/webm', 'audio/ogg',
  'video/mp4', 'video/webm', 'video/ogg', 'application/ogg',
]);

const finished = (u: Upload) => u.size !== undefined && u.offset === u.size;

/** `filename="<ascii>"; filename*=UTF-8''<utf-8>` (RFC 6266): any name, and never a header injection. */
function dispositionName(name: string): string {
  const clean = name.replace(/[\x00-\x1f\x7f]/g, '_');
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '\\$&');
  const utf8 = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

/** Content-Type and Content-Disposition from the upload's `filetype` and `filename` metadata. */
export function downloadHeaders(metadata: Upload['metadata']): Record<string, string> {
  const { filetype, filename } = metadata ?? {};
  const type = filetype && MEDIA_TYPE.test(filetype) ? filetype : 'application/octet-stream';
  let disposition = INLINE_TYPES.has(type) ? 'inline' : 'attachment';
  if (filename) disposition += `; ${dispositionName(filename)}`;
  return { 'Content-Type': type, 'Content-Disposition': disposition, 'X-Content-Type-Options': 'nosniff' };
}

/** Missing, removed or never finished: @tus/server's errors for these become ours. */
function notFound(e: unknown): never {
  if (e === TUS_ERRORS.FILE_NOT_FOUND || e === TUS_ERRORS.FILE_NO_LONGER_EXISTS || (e as NodeJS.ErrnoException)?.code === 'ENOENT') {
    throw new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND);
  }
  throw e;
}

export function getHandler(store: DigestFileStore, locker: UploadLocker, log: (line: string) => void): express.RequestHandler {
  return async (req, res) => {
    // Undefined on the collection URL, which names no upload.
    const id = req.params.id as string | undefined;
    let file: fsp.FileHandle | undefined;
    try {
      if (id === undefined) throw new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND);
      // Unfinished uploads are not served (as @tus/server did; tusd serves the bytes so far): a
      // download that is not the whole file would pass for it. Answered without the lock, so a GET
      // never asks a running PATCH to stop.
      if (!finished(await store.getUpload(id).catch(notFound))) throw new TuspassError(ERRORS.ERR_UPLOAD_UNFINISHED);
      // Under the lock, a checksummed PATCH that wrote the last bytes has verified them (or cut them
      // off) and a DELETE has finished. The file is opened before the lock is let go: a DELETE from
      // then on unlinks it, and this open file still reads to the end. (While the lock service is away
      // it is read without the lock, as a HEAD is: no write or DELETE goes ahead then.)
      const upload = await withReadLock(locker, id, async () => {
        const again = await store.getUpload(id).catch(notFound);
        if (!finished(again)) throw new TuspassError(ERRORS.ERR_UPLOAD_UNFINISHED);
        file = await fsp.open(store.filePath(id), 'r').catch(notFound);
        if ((await file.stat()).size !== again.size) throw new TuspassError(ERRORS.ERR_UPLOAD_UNFINISHED);
        return again;
      });
      const opened = file!;
      file = undefined;
      // setHeader, not express's set: that would add a charset to the upload's own text type.
      const headers = { ...corsHeaders(), 'Tus-Resumable': TUS_VERSION, ...downloadHeaders(upload.metadata), 'Content-Length': String(upload.size) };
      res.statusCode = 200;
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      if (upload.size === 0) {
        await opened.close();
        res.end();
        return;
      }
      const body = opened.createReadStream({ start: 0, end: upload.size! - 1, highWaterMark: 1 << 20 });
      // pipeline destroys both ends on any error; the file handle closes with its stream.
      pipeline(body, res, (err) => {
        if (!err) return;
        // A client that went away mid-download is no fault of ours.
        if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') log(`tus GET ${TUS_PATH}/${id}: ${err.message}`);
      });
    } catch (e) {
      await file?.close().catch(() => {});
      sendTusError(res, req, e, log);
    }
  };
}
