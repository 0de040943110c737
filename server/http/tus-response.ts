// Answers of the tus routes: the common headers, and the count of every tus answer of 400 and above
// in tusd_errors_total. Errors become answers in the one error responder (server/http/error-answer.ts),
// which writes the tus routes' through sendTus.
import type express from 'express';
import { countTusError, tusErrorCode } from '../ops/metrics.ts';
import { EXTRA_EXPOSED_HEADERS, TUS_VERSION } from './tus-headers.ts';

const EXPOSED = [
  'Location',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  ...EXTRA_EXPOSED_HEADERS,
].join(', ');

/**
 * Browsers on the origins CORS_ORIGINS allows (Uppy, tus-js-client pages) must be able to read tus
 * answers. Which origin may read is set for the request by server/http/cors.ts before any handler runs.
 */
export const corsHeaders = () => ({ 'Access-Control-Expose-Headers': EXPOSED });

export function sendTus(res: express.Response, status: number, headers: Record<string, string> = {}, body = ''): void {
  // tusd_errors_total: every tus answer of 400 and above leaves through here.
  if (status >= 400) countTusError(status, tusErrorCode(body));
  res.status(status).set({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION, ...headers });
  if (body && status !== 204) res.send(body);
  else res.end();
}
