// Responses of tuspass's own tus handlers: the common headers, and one mapping from errors (tus
// errors, our error table, hook rejections) to a response.
import type express from 'express';
import { ERRORS as TUS_ERRORS } from '@tus/utils';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { countTusError, tusErrorCode } from '../metrics.ts';
import { pathForLog, type Log } from '../../core/logger.ts';
import { noteErrorCode, requestIdOf } from '../request-id.ts';
import { EXTRA_EXPOSED_HEADERS, TUS_VERSION } from './tus-headers.ts';

const EXPOSED = [
  'Location', 'Tus-Resumable', 'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Upload-Offset', 'Upload-Length',
  'Upload-Metadata', 'Upload-Defer-Length', 'Upload-Concat', ...EXTRA_EXPOSED_HEADERS,
].join(', ');

/**
 * Browsers on the origins CORS_ORIGINS allows (Uppy, tus-js-client pages) must be able to read tus
 * answers. Which origin may read is set for the request by server/cors.ts before any handler runs.
 */
export const corsHeaders = () => ({ 'Access-Control-Expose-Headers': EXPOSED });

export function sendTus(res: express.Response, status: number, headers: Record<string, string> = {}, body = ''): void {
  // tusd_errors_total: every tus answer of 400 and above leaves through here or @tus/server's onResponseError.
  if (status >= 400) countTusError(status, tusErrorCode(body));
  res.status(status).set({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION, ...headers });
  if (body && status !== 204) res.send(body);
  else res.end();
}

/** Errors of any origin as a tus response; unknown errors are a 500 that names the request, logged. */
export function sendTusError(res: express.Response, req: express.Request, e: unknown, log: Log): void {
  // The store's "not found" in our table's words, as every other refusal.
  if (e === TUS_ERRORS.FILE_NOT_FOUND) e = new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND);
  const err = e as { status_code?: number; body?: string; headers?: Record<string, string>; message?: string };
  let status: number;
  let body: string;
  if (e instanceof TuspassError) {
    status = e.status;
    body = `${e.code}: ${e.message}\n`;
    noteErrorCode(res, e.code);
    if (e.logDetail) log(`tus ${req.method} ${pathForLog(req.originalUrl)}: ${e.code} ${e.message} (${e.logDetail})`, { request_id: requestIdOf(req) });
  } else if (typeof err?.status_code === 'number') {
    status = err.status_code;
    body = err.body ?? '';
  } else {
    status = 500;
    body = 'ERR_INTERNAL: internal error\n';
    noteErrorCode(res, ERRORS.ERR_INTERNAL.code);
    log(`tus ${req.method} ${pathForLog(req.originalUrl)}: ${(e as Error)?.stack ?? String(e)}`, { request_id: requestIdOf(req), level: 'error' });
  }
  if (res.headersSent) return;
  // Unread request bytes are dropped with the connection rather than read to the end. A request
  // without a body keeps its connection (a refusal in a guard comes before node has marked it complete).
  if (!req.complete && hasBody(req)) res.set('Connection', 'close');
  sendTus(res, status, { 'Content-Type': 'text/plain; charset=utf-8', ...err?.headers }, body);
}

const hasBody = (req: express.Request) => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
