// A stored file sent to a client: GET /files/:id (a finished tus upload) and GET
// /api/uploads/:id/file (a recorded one) both answer through here, with the same headers and the
// same range support. One byte range (RFC 9110 §14: `Range: bytes=…`, 206 with Content-Range, 416
// with `Content-Range: bytes */<size>`), validators (ETag, Last-Modified; 304, If-Range, If-Match,
// If-Unmodified-Since), the name as Content-Disposition. The body is a node file stream piped with
// stream.pipeline, so a file removed mid-read or a client gone reaches one callback.
import { pipeline, type Readable } from 'node:stream';
import type express from 'express';
import { ERRORS, TuspassError } from '../../core/errors.ts';

/** RFC 1341 media types with parameters (as @tus/server checks `filetype` before using it). */
const TOKEN = "[0-9A-Za-z!#$%&'*+.^_`|~-]+";
const MEDIA_TYPE = new RegExp(
  `^(?:application|audio|example|font|haptics|image|message|model|multipart|text|video|x-(?:${TOKEN}))\\/(${TOKEN})` +
    `((?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\.)*"))*)$`,
);

/**
 * Types a browser may show in place (@tus/server's list). Everything else is an attachment: HTML or
 * SVG could run script on this origin, and PDF readers are a common target.
 */
const INLINE_TYPES = new Set([
  'text/plain',
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/bmp',
  'image/webp',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/webm',
  'audio/ogg',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'application/ogg',
]);

/** `filename="<ascii>"; filename*=UTF-8''<utf-8>` (RFC 6266): any name, and never a header injection. */
function dispositionName(name: string): string {
  const clean = name.replace(/[\x00-\x1f\x7f]/g, '_');
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '\\$&');
  const utf8 = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

export interface DownloadNaming {
  /** The file's name for the person saving it (none: the browser picks one). */
  name?: string;
  /** The media type given at upload; one that is not a media type is sent as application/octet-stream. */
  contentType?: string;
  /**
   * `by-type`: shown in place when the type is safe to show (tusd and @tus/server do so), an
   * attachment otherwise; `attachment`: always saved.
   */
  disposition: 'by-type' | 'attachment';
}

/** Content-Type, Content-Disposition and nosniff for a download. */
export function downloadHeaders({ name, contentType, disposition }: DownloadNaming): Record<string, string> {
  const type = contentType && MEDIA_TYPE.test(contentType) ? contentType : 'application/octet-stream';
  let value = disposition === 'by-type' && INLINE_TYPES.has(type) ? 'inline' : 'attachment';
  if (name) value += `; ${dispositionName(name)}`;
  return { 'Content-Type': type, 'Content-Disposition': value, 'X-Content-Type-Options': 'nosniff' };
}

/** Bytes to send: an open file (fs/promises' FileHandle is one), or an object in S3 read by range. */
export interface DownloadSource {
  createReadStream(range: { start: number; end: number; highWaterMark?: number }): Readable;
  close(): Promise<void>;
}

export interface Download extends DownloadNaming {
  /** The bytes, open; closed here once sent (or not sent). */
  file: DownloadSource;
  size: number;
  modified: Date;
}

/** A weak validator from size and time, as express's own static files have it. */
const etagOf = (d: Download) => `W/"${d.size.toString(16)}-${d.modified.getTime().toString(16)}"`;

/** Seconds, as HTTP dates carry them. */
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

function preconditionFails(req: express.Request, etag: string, modified: Date): boolean {
  const ifMatch = req.get('if-match');
  if (ifMatch !== undefined)
    return (
      ifMatch.trim() !== '*' &&
      !ifMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag.replace(/^W\//, ''))
    );
  const since = Date.parse(req.get('if-unmodified-since') ?? '');
  return !Number.isNaN(since) && seconds(modified) > since / 1000;
}

/** Whether a Range applies: no If-Range, or one naming this very file (RFC 9110 §13.1.5). */
function rangeApplies(req: express.Request, etag: string, modified: Date): boolean {
  const ifRange = req.get('if-range');
  if (ifRange === undefined) return true;
  if (ifRange.trim().startsWith('"') || ifRange.trim().startsWith('W/')) return ifRange.trim() === etag;
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && seconds(modified) <= date / 1000;
}

/**
 * Answers `req` with the file: 200, 206 for one satisfiable range, 304 when the client's copy is
 * current. Refusals are thrown (ERR_RANGE_NOT_SATISFIABLE with its Content-Range, ERR_PRECONDITION_FAILED)
 * for the route's own error answer; the file is then closed. `onStreamError` hears of a read that
 * failed once the answer had begun (a client gone is not one).
 */
export async function sendDownload(
  req: express.Request,
  res: express.Response,
  download: Download,
  onStreamError: (err: Error) => void,
): Promise<void> {
  const { file, size, modified } = download;
  try {
    const etag = etagOf(download);
    if (preconditionFails(req, etag, modified)) throw new TuspassError(ERRORS.ERR_PRECONDITION_FAILED);
    // setHeader, not express's set: that would add a charset to the upload's own text type.
    const headers: Record<string, string> = {
      ...downloadHeaders(download),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Last-Modified': modified.toUTCString(),
    };
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.statusCode = 200;
    if (req.fresh) {
      res.statusCode = 304;
      res.end();
      await file.close();
      return;
    }
    let start = 0;
    let end = size - 1;
    if (req.get('range') !== undefined && rangeApplies(req, etag, modified)) {
      // One range (several at once are answered whole, as express's static files do); a malformed one is ignored.
      const ranges = req.range(size, { combine: true });
      if (ranges === -1)
        throw Object.assign(new TuspassError(ERRORS.ERR_RANGE_NOT_SATISFIABLE), {
          headers: { 'Content-Range': `bytes */${size}` },
        });
      if (Array.isArray(ranges) && ranges.type === 'bytes' && ranges.length === 1) {
        start = ranges[0]!.start;
        end = ranges[0]!.end;
        res.statusCode = 206;
        res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      }
    }
    res.setHeader('Content-Length', String(size === 0 ? 0 : end - start + 1));
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      await file.close();
      return;
    }
    // The file handle closes with its stream; pipeline destroys both ends on any error.
    pipeline(file.createReadStream({ start, end, highWaterMark: 1 << 20 }), res, (err) => {
      // A client that went away mid-download is no fault of ours.
      if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') onStreamError(err);
    });
  } catch (e) {
    for (const name of ['Content-Disposition', 'Accept-Ranges', 'ETag', 'Last-Modified']) res.removeHeader(name);
    await file.close().catch(() => {});
    throw e;
  }
}
