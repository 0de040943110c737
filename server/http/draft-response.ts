// The draft routes' answers. Their errors become answers in the one error responder
// (server/http/error-answer.ts): problem details (RFC 9457) with the draft's problem types.
import type express from 'express';

/** What a browser page may read of a draft answer. */
const EXPOSED = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Complete',
  'Upload-Incomplete',
  'Upload-Limit',
  'Upload-Draft-Interop-Version',
  'Tuspass-Completion',
  'Upload-Expires',
].join(', ');

export function sendDraft(
  res: express.Response,
  status: number,
  headers: Record<string, string> = {},
  body = '',
): void {
  res.status(status).set({ 'Access-Control-Expose-Headers': EXPOSED, ...headers });
  if (body && status !== 204 && status !== 304) res.send(body);
  else res.end();
}
