// OPTIONS on /files/ and below — the server's configuration, tus's and a browser's preflight in one
// answer. "A successful response indicated by the 204 No Content status MUST contain the
// Tus-Version header. It MAY include the Tus-Extension and Tus-Max-Size headers." The checksum
// extension's Tus-Checksum-Algorithm is added on the route (app.ts); which origin may read the answer
// was decided before (server/http/cors.ts).
import type express from 'express';
import type { Config } from '../../config/config.ts';
import { maxSizeFor } from '../../auth/middleware.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { EXTRA_ALLOWED_HEADERS, TUS_VERSION } from '../../http/tus-headers.ts';
import { sendTus } from '../../http/tus-response.ts';

/** The methods of the tus routes (GET: a finished upload's bytes). */
const METHODS = 'POST, HEAD, PATCH, OPTIONS, DELETE, GET';
/** Request headers a page may send: tus's, what a proxy or a page adds, and ours. */
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Location',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Resumable',
  'Tus-Version',
  'Upload-Concat',
  'Upload-Defer-Length',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Offset',
  'X-HTTP-Method-Override',
  'X-Requested-With',
  'X-Forwarded-Host',
  'X-Forwarded-Proto',
  'Forwarded',
  ...EXTRA_ALLOWED_HEADERS,
].join(', ');
/** How long a browser may keep a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = '86400';

export function optionsHandler(config: Config, store: UploadStore): express.RequestHandler {
  return (req, res) => {
    const maxSize = maxSizeFor(config, req);
    const headers = {
      'Tus-Version': TUS_VERSION,
      // The store's extensions: the array start.ts configured (concatenation on the file store only).
      ...(store.extensions.length > 0 && { 'Tus-Extension': store.extensions.join(',') }),
      ...(Number.isFinite(maxSize) && maxSize > 0 && { 'Tus-Max-Size': String(maxSize) }),
      // What a preflight may ask for. Whether the page's origin may read the answer at all is
      // Access-Control-Allow-Origin's (cors.ts): without it the browser refuses whatever this says.
      'Access-Control-Allow-Methods': METHODS,
      'Access-Control-Allow-Headers': ALLOWED_HEADERS,
      'Access-Control-Max-Age': PREFLIGHT_MAX_AGE_S,
    };
    sendTus(res, 204, headers);
  };
}
