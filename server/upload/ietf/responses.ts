// The draft routes' answers, and the one place their errors become answers: problem details
// (RFC 9457, application/problem+json) with the draft's problem types where the client's version
// defines them, the error table's status, and its stable code as the `code` member. A hook's own
// answer is relayed as the hook wrote it, as on the tus routes.
import http from 'node:http';
import type express from 'express';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { pathForLog, type Log } from '../../../core/logger.ts';
import { noteDropped } from '../../dropped-requests.ts';
import { countTusError } from '../../metrics.ts';
import { noteErrorCode, requestIdOf } from '../../request-id.ts';
import type { OffsetMismatch } from '../patch-handler.ts';
import { asTusError } from '../tus-response.ts';
import { HookRefusal } from '../upload-events.ts';
import { type DraftVersion, type ProblemType } from './versions.ts';

/** What a browser page may read of a draft answer. */
const EXPOSED = ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Limit', 'Upload-Draft-Interop-Version', 'Tuspass-Completion', 'Upload-Expires'].join(', ');

export function sendDraft(res: express.Response, status: number, headers: Record<string, string> = {}, body = ''): void {
  res.status(status).set({ 'Access-Control-Expose-Headers': EXPOSED, ...headers });
  if (body && status !== 204 && status !== 304) res.send(body);
  else res.end();
}

const PROBLEMS: Record<string, ProblemType> = {
  [ERRORS.ERR_OFFSET_MISMATCH.code]: 'mismatching-upload-offset',
  [ERRORS.ERR_DRAFT_UPLOAD_COMPLETED.code]: 'completed-upload',
  [ERRORS.ERR_LENGTH_INVALID.code]: 'inconsistent-upload-length',
};

const PROBLEM_BASE = 'https://iana.org/assignments/http-problem-types#';

/** Errors of any origin as a draft answer; unknown errors are a 500 that names the request, logged. */
export function sendDraftError(res: express.Response, req: express.Request, e: unknown, version: DraftVersion | undefined, log: Log): void {
  // No one to answer: one line and a count of its own (dropped-requests.ts), as on the tus routes.
  if (noteDropped(req, res, e, log, true)) return;
  const known = asTusError(e);
  const carried = (e as { headers?: Record<string, string> } | undefined)?.headers;
  if (res.headersSent) {
    // The final answer had begun: nothing can follow it on this connection.
    res.destroy();
    return;
  }
  if (!req.complete && hasBody(req)) res.set('Connection', 'close');
  if (known instanceof HookRefusal) {
    countTusError(known.status_code, 'ERR_UPLOAD_REJECTED');
    return sendDraft(res, known.status_code, { 'Content-Type': 'text/plain; charset=utf-8', ...known.headers }, known.body);
  }
  const error = known ?? new TuspassError(ERRORS.ERR_INTERNAL);
  if (!known) log(`draft ${req.method} ${pathForLog(req.originalUrl)}: ${(e as Error)?.stack ?? String(e)}`, { request_id: requestIdOf(req), level: 'error' });
  else if (known.logDetail) log(`draft ${req.method} ${pathForLog(req.originalUrl)}: ${known.code} ${known.message} (${known.logDetail})`, { request_id: requestIdOf(req) });
  noteErrorCode(res, error.code);
  countTusError(error.status, error.code);
  const problem = PROBLEMS[error.code];
  const typed = problem !== undefined && version?.problems.has(problem);
  const body: Record<string, unknown> = {
    type: typed ? `${PROBLEM_BASE}${problem}` : 'about:blank',
    title: typed ? error.message : (http.STATUS_CODES[error.status] ?? 'Error'),
    status: error.status,
    code: error.code,
    detail: error.message,
  };
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json', ...carried };
  const mismatch = (e as { mismatch?: OffsetMismatch }).mismatch;
  if (mismatch) {
    // "The response MUST include the correct offset in the Upload-Offset header field."
    headers['Upload-Offset'] = String(mismatch.expected);
    body['expected-offset'] = mismatch.expected;
    body['provided-offset'] = mismatch.provided;
  }
  sendDraft(res, error.status, headers, JSON.stringify(body));
}

const hasBody = (req: express.Request) => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
