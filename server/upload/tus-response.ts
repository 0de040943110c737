// Responses of the tus routes: the common headers, and the one mapping from errors to a response.
// Every tus error answer — our handlers', the guards', and @tus/server's (its onResponseError hands
// its errors here, tus-server.ts) — is `ERR_CODE: message` with the status of the error table
// (core/errors.ts), the same headers, and is counted in tusd_errors_total by its code. The one
// exception is a hook's own answer (HookRefusal, upload-events.ts), relayed as the hook wrote it.
import type express from 'express';
import { ERRORS as TUS_SERVER_ERRORS } from '@tus/utils';
import { asTuspassError, ERRORS, isCapacityRefusal, TuspassError, type ErrorEntry } from '../../core/errors.ts';
import { countTusError, tusErrorCode } from '../metrics.ts';
import { errorText, pathForLog, type Log } from '../../core/logger.ts';
import { noteDropped } from '../dropped-requests.ts';
import { noteErrorCode, requestIdOf } from '../request-id.ts';
import { EXTRA_EXPOSED_HEADERS, TUS_VERSION } from './tus-headers.ts';
import { HookRefusal } from './upload-events.ts';

const EXPOSED = [
  'Location', 'Tus-Resumable', 'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Upload-Offset', 'Upload-Length',
  'Upload-Metadata', 'Upload-Defer-Length', 'Upload-Concat', ...EXTRA_EXPOSED_HEADERS,
].join(', ');

/**
 * Browsers on the origins CORS_ORIGINS allows (Uppy, tus-js-client pages) must be able to read tus
 * answers. Which origin may read is set for the request by server/cors.ts before any handler runs.
 */
export const corsHeaders = () => ({ 'Access-Control-Expose-Headers': EXPOSED });

/**
 * @tus/server's errors (its ERRORS table, thrown by its handlers, its lockers and FileStore) in our
 * table's words. Typed over every key of its table: an entry added by an @tus/server update fails the
 * build here instead of reaching a client in its own words.
 */
const FROM_TUS_SERVER: Record<keyof typeof TUS_SERVER_ERRORS, ErrorEntry> = {
  MISSING_OFFSET: ERRORS.ERR_OFFSET_INVALID,
  ABORTED: ERRORS.ERR_UPLOAD_INTERRUPTED,
  INVALID_TERMINATION: ERRORS.ERR_UPLOAD_FINISHED,
  // MemoryLocker's timeout: tusd's 423, as our Redis locker answers (redis-locker.ts).
  ERR_LOCK_TIMEOUT: ERRORS.ERR_UPLOAD_LOCKED,
  INVALID_CONTENT_TYPE: ERRORS.ERR_INVALID_CONTENT_TYPE,
  FILE_NOT_FOUND: ERRORS.ERR_UPLOAD_NOT_FOUND,
  INVALID_OFFSET: ERRORS.ERR_OFFSET_MISMATCH,
  FILE_NO_LONGER_EXISTS: ERRORS.ERR_UPLOAD_EXPIRED,
  ERR_SIZE_EXCEEDED: ERRORS.ERR_SIZE_EXCEEDED,
  ERR_MAX_SIZE_EXCEEDED: ERRORS.ERR_MAX_SIZE_EXCEEDED,
  INVALID_LENGTH: ERRORS.ERR_LENGTH_REQUIRED,
  INVALID_METADATA: ERRORS.ERR_METADATA_INVALID,
  UNKNOWN_ERROR: ERRORS.ERR_INTERNAL,
  FILE_WRITE_ERROR: ERRORS.ERR_INTERNAL,
  // Not reached: partial creations reach @tus/server without Upload-Concat, finals never (tus-server.ts).
  UNSUPPORTED_CONCATENATION_EXTENSION: ERRORS.ERR_CONCAT_INVALID,
  UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION: ERRORS.ERR_LENGTH_REQUIRED,
  UNSUPPORTED_EXPIRATION_EXTENSION: ERRORS.ERR_INTERNAL,
};
const BY_TUS_SERVER_ENTRY = new Map<object, ErrorEntry>(
  Object.entries(FROM_TUS_SERVER).map(([key, entry]) => [TUS_SERVER_ERRORS[key as keyof typeof TUS_SERVER_ERRORS], entry]),
);

/** Any error as one of ours (or a hook's answer); undefined for an error nobody expected (a 500, logged). */
export function asTusError(e: unknown): TuspassError | HookRefusal | undefined {
  if (e instanceof TuspassError || e instanceof HookRefusal) return e;
  const entry = typeof e === 'object' && e !== null ? BY_TUS_SERVER_ENTRY.get(e) : undefined;
  if (entry && entry !== ERRORS.ERR_INTERNAL) return new TuspassError(entry);
  // StreamLimiter's error, a class @tus/utils does not export (a chunked creation-with-upload body
  // past the upload's length or MAX_SIZE): in its words the table's ERR_MAX_SIZE_EXCEEDED, as a
  // refusal the one a Content-Length past the same limit gets.
  if (e instanceof Error && (e as { body?: unknown }).body === TUS_SERVER_ERRORS.ERR_MAX_SIZE_EXCEEDED.body) return new TuspassError(ERRORS.ERR_SIZE_EXCEEDED);
  // Every other foreign error as every service maps it (core/errors.ts): an id express cannot decode is
  // the client's (400 ERR_URL_INVALID), not a 500.
  const mapped = asTuspassError(e);
  return mapped.code === ERRORS.ERR_INTERNAL.code ? undefined : mapped;
}

export function sendTus(res: express.Response, status: number, headers: Record<string, string> = {}, body = ''): void {
  // tusd_errors_total: every tus answer of 400 and above leaves through here.
  if (status >= 400) countTusError(status, tusErrorCode(body));
  res.status(status).set({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION, ...headers });
  if (body && status !== 204) res.send(body);
  else res.end();
}

/** Errors of any origin as a tus response; unknown errors are a 500 that names the request, logged. */
export function sendTusError(res: express.Response, req: express.Request, e: unknown, log: Log): void {
  // No one to answer: one line and a count of its own (dropped-requests.ts), whatever the error.
  if (noteDropped(req, res, e, log, true)) return;
  const known = asTusError(e);
  // Headers an error carries: Upload-Offset with a 408 or 413, Retry-After with a 503, a hook's own.
  const carried = (e as { headers?: Record<string, string> } | undefined)?.headers;
  let status: number;
  let body: string;
  let headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', ...carried };
  if (known instanceof TuspassError) {
    status = known.status;
    body = `${known.code}: ${known.message}\n`;
    noteErrorCode(res, known.code, known.logDetail);
    // A refusal by design is logged once, with its detail, by the refused-request line (request-id.ts).
    if (known.logDetail && !isCapacityRefusal(known.code)) log(`tus ${req.method} ${pathForLog(req.originalUrl)}: ${known.code} ${known.message} (${known.logDetail})`, { request_id: requestIdOf(req) });
    // "it MUST respond with the 412 Precondition Failed status and MUST include the Tus-Version header".
    if (known.code === ERRORS.ERR_UNSUPPORTED_VERSION.code) headers['Tus-Version'] = TUS_VERSION;
  } else if (known instanceof HookRefusal) {
    status = known.status_code;
    body = known.body;
    headers = { 'Content-Type': 'text/plain; charset=utf-8', ...known.headers };
  } else {
    status = 500;
    body = `${ERRORS.ERR_INTERNAL.code}: ${ERRORS.ERR_INTERNAL.message}\n`;
    noteErrorCode(res, ERRORS.ERR_INTERNAL.code);
    log(`tus ${req.method} ${pathForLog(req.originalUrl)}: ${errorText(e, { stack: true })}`, { request_id: requestIdOf(req), level: 'error' });
  }
  if (res.headersSent) return;
  // Unread request bytes are dropped with the connection rather than read to the end. A request
  // without a body keeps its connection (a refusal in a guard comes before node has marked it complete).
  if (!req.complete && hasBody(req)) res.set('Connection', 'close');
  sendTus(res, status, headers, body);
}

const hasBody = (req: express.Request) => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
