// The one place an error becomes an answer, for every listener and route: the upload server's tus
// routes, the IETF draft's requests, the nginx module's /upload, the completion service, the ops
// routes and the metrics listener, and (answerUnparsed) requests node's parser refuses before any
// route. Each error is mapped once to the error table (knownError), logged and counted here, and
// answered in the form its request speaks (formOf):
//   tus    `ERR_CODE: message` as text, Tus-Resumable, counted in tusd_errors_total (tus routes)
//   draft  problem details (RFC 9457) with the draft's problem types, counted as tus's (draft requests)
//   json   {"error":{"code","message"},"message"} — the nginx module's clients read "message" (elsewhere)
// Bodies and statuses are the table's; paths and stacks go to the log only (TuspassError.logDetail).
// The one exception is a hook's own answer (HookRefusal), relayed as the hook wrote it, as tusd does.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type express from 'express';
import { ERRORS as TUS_SERVER_ERRORS } from '@tus/utils';
import { asTuspassError, ERRORS, isCapacityRefusal, TuspassError, type ErrorEntry } from '../../core/errors.ts';
import { errorText, pathForLog, type Log } from '../../core/logger.ts';
import { noteDropped } from './dropped-requests.ts';
import { countTusError } from '../ops/metrics.ts';
import { noteErrorCode, requestIdOf } from './request-id.ts';
import { TUS_PATH, TUS_VERSION } from './tus-headers.ts';
import { sendTus } from './tus-response.ts';
import { sendDraft } from './draft-response.ts';

/**
 * A hook's own answer: a pre-create or pre-terminate rejection, a pre-finish RejectUpload, a
 * post-receive StopUpload. Its status, body and headers go to the client as the hook wrote them —
 * tusd relays a hook's HTTPResponse unchanged, and the answer is the hook author's to word (the
 * client of their application reads it); a hook that failed or timed out answers from our table
 * (hooks/runner.ts: ERR_HOOK_FAILED, ERR_HOOK_TIMEOUT). `status_code` and `body` are the names the
 * multipart path (multipart/multipart-hooks.ts) reads.
 */
export class HookRefusal extends Error {
  constructor(
    readonly status_code: number,
    readonly body: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.trim() || `a hook answered ${status_code}`);
  }
}

/**
 * @tus/utils' errors (its ERRORS table, thrown by @tus/file-store's FileStore, the info files'
 * FileKvStore and the stores, which keep its words) in our table's words. Typed over every key of its
 * table: an entry added by an update fails the build here instead of reaching a client in its own words.
 */
const FROM_TUS_SERVER: Record<keyof typeof TUS_SERVER_ERRORS, ErrorEntry> = {
  MISSING_OFFSET: ERRORS.ERR_OFFSET_INVALID,
  ABORTED: ERRORS.ERR_UPLOAD_INTERRUPTED,
  INVALID_TERMINATION: ERRORS.ERR_UPLOAD_FINISHED,
  // A lock's timeout: tusd's 423, as our lockers answer (memory-locker.ts, redis-locker.ts).
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
  // Not thrown by anything tuspass runs (they were @tus/server's handlers' refusals).
  UNSUPPORTED_CONCATENATION_EXTENSION: ERRORS.ERR_CONCAT_INVALID,
  UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION: ERRORS.ERR_LENGTH_REQUIRED,
  UNSUPPORTED_EXPIRATION_EXTENSION: ERRORS.ERR_INTERNAL,
};
const BY_TUS_SERVER_ENTRY = new Map<object, ErrorEntry>(
  Object.entries(FROM_TUS_SERVER).map(([key, entry]) => [
    TUS_SERVER_ERRORS[key as keyof typeof TUS_SERVER_ERRORS],
    entry,
  ]),
);

/**
 * The one mapping of any error to the table (or a hook's answer); undefined for an error nobody
 * expected (a 500, logged with its stack).
 */
export function knownError(e: unknown): TuspassError | HookRefusal | undefined {
  if (e instanceof TuspassError || e instanceof HookRefusal) return e;
  const entry = typeof e === 'object' && e !== null ? BY_TUS_SERVER_ENTRY.get(e) : undefined;
  if (entry && entry !== ERRORS.ERR_INTERNAL) return new TuspassError(entry);
  // StreamLimiter's error, a class @tus/utils does not export (a chunked creation-with-upload body
  // past the upload's length or MAX_SIZE): in its words the table's ERR_MAX_SIZE_EXCEEDED, as a
  // refusal the one a Content-Length past the same limit gets.
  const limiter = e instanceof Error && (e as { body?: unknown }).body === TUS_SERVER_ERRORS.ERR_MAX_SIZE_EXCEEDED.body;
  if (limiter) return new TuspassError(ERRORS.ERR_SIZE_EXCEEDED);
  // express's own errors keep their meaning (core/errors.ts): an id express cannot decode is the
  // client's (400 ERR_URL_INVALID), not a 500.
  const mapped = asTuspassError(e);
  return mapped.code === ERRORS.ERR_INTERNAL.code ? undefined : mapped;
}

export type ErrorForm = 'tus' | 'draft' | 'json';

/** Requests under /files (in any case: express routes case-insensitively). */
const TUS_ROUTE = new RegExp(`^${TUS_PATH}(?:[/?]|$)`, 'i');

/** What the draft's routes note on a request they serve: its version's problem types (ietf/versions.ts). */
export interface DraftRequest {
  problems: ReadonlySet<string>;
}

/** Marks a request as the draft's: its errors are answered as problem details (version unknown: untyped). */
export function servedAsDraft(res: express.Response, version: DraftRequest | null): void {
  res.locals.draftRequest = version ?? { problems: new Set() };
}

/** The form a request's errors are answered in: by the front that serves it. */
export function formOf(req: express.Request, res: express.Response): ErrorForm {
  if (res.locals.draftRequest !== undefined) return 'draft';
  return TUS_ROUTE.test(req.originalUrl ?? req.url ?? '') ? 'tus' : 'json';
}

export interface AnswerOptions {
  log: Log;
  /** Who answers, for the log line (`tus`, `draft`, `upload`, `completion`, `metrics listener`). */
  service?: string;
  /** By default formOf(req, res). */
  form?: ErrorForm;
}

/**
 * Answers an error of any origin in the request's form. A request whose connection went has no one to
 * answer: one line and a count of its own (dropped-requests.ts), whatever the error.
 */
export function answerError(req: express.Request, res: express.Response, err: unknown, options: AnswerOptions): void {
  const form = options.form ?? formOf(req, res);
  const service = options.service ?? (form === 'json' ? 'upload' : form);
  if (noteDropped(req, res, err, options.log, form !== 'json')) return;
  const known = knownError(err);
  const error = known instanceof HookRefusal ? undefined : (known ?? new TuspassError(ERRORS.ERR_INTERNAL));
  if (error) {
    noteErrorCode(res, error.code, error.logDetail);
    logError(req, err, error, form, service, known === undefined, options.log);
  }
  if (res.headersSent) {
    // The answer had begun: nothing can follow it on this connection.
    if (!res.writableEnded) res.destroy();
    return;
  }
  // Unread request bytes are dropped with the connection rather than read to the end. A request
  // without a body keeps its connection (a refusal in a guard comes before node has marked it complete).
  if (!req.complete && hasBody(req)) res.set('Connection', 'close');
  // Headers an error carries: Upload-Offset with a 408 or 413, Retry-After with a 503, Content-Range with a 416.
  const carried = (err as { headers?: Record<string, string> } | undefined)?.headers;
  if (known instanceof HookRefusal) return relay(res, form, known);
  if (form === 'tus') return tusAnswer(res, error!, carried);
  if (form === 'draft') return draftAnswer(res, error!, carried, err);
  if (carried) res.set(carried);
  res.status(error!.status).json(error!.toJSON());
}

/**
 * One line per error worth a line: an unexpected one (a 500, with its stack), one with a detail for
 * the log — and on the JSON routes every refusal, as their services always did. A refusal by design
 * is logged once, by the refused-request line (request-id.ts).
 */
function logError(
  req: express.Request,
  cause: unknown,
  e: TuspassError,
  form: ErrorForm,
  service: string,
  unexpected: boolean,
  log: Log,
): void {
  if (!unexpected && isCapacityRefusal(e.code)) return;
  const detail = e.logDetail ? ` (${e.logDetail})` : '';
  if (!unexpected && !detail && (form !== 'json' || e.code === ERRORS.ERR_NOT_FOUND.code)) return;
  const stack = unexpected ? `\n${errorText(cause, { stack: true })}` : '';
  const where = `${req.method} ${pathForLog(req.originalUrl ?? req.url)}`;
  const level = e.status >= 500 ? 'error' : 'info';
  log(`${service}: ${e.code} ${where}: ${e.message}${detail}${stack}`, {
    request_id: requestIdOf(req),
    code: e.code,
    level,
  });
}

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' };

function relay(res: express.Response, form: ErrorForm, hook: HookRefusal): void {
  const headers = { ...TEXT, ...hook.headers };
  if (form === 'tus') return sendTus(res, hook.status_code, headers, hook.body);
  if (form === 'draft') countTusError(hook.status_code, 'ERR_UPLOAD_REJECTED');
  if (form === 'draft') return sendDraft(res, hook.status_code, headers, hook.body);
  res.status(hook.status_code).set(headers).send(hook.body);
}

function tusAnswer(res: express.Response, e: TuspassError, carried: Carried): void {
  const headers: Record<string, string> = { ...TEXT, ...carried };
  // "it MUST respond with the 412 Precondition Failed status and MUST include the Tus-Version header".
  if (e.code === ERRORS.ERR_UNSUPPORTED_VERSION.code) headers['Tus-Version'] = TUS_VERSION;
  sendTus(res, e.status, headers, `${e.code}: ${e.message}\n`);
}

/** The draft's problem types, by our code (given where the client's version defines them). */
const PROBLEMS: Record<string, string> = {
  [ERRORS.ERR_OFFSET_MISMATCH.code]: 'mismatching-upload-offset',
  [ERRORS.ERR_DRAFT_UPLOAD_COMPLETED.code]: 'completed-upload',
  [ERRORS.ERR_LENGTH_INVALID.code]: 'inconsistent-upload-length',
};

const PROBLEM_BASE = 'https://iana.org/assignments/http-problem-types#';

type Carried = Record<string, string> | undefined;

function draftAnswer(res: express.Response, e: TuspassError, carried: Carried, cause: unknown): void {
  countTusError(e.status, e.code);
  const version = res.locals.draftRequest as DraftRequest;
  const problem = PROBLEMS[e.code];
  const typed = problem !== undefined && version.problems.has(problem);
  const body: Record<string, unknown> = {
    type: typed ? `${PROBLEM_BASE}${problem}` : 'about:blank',
    title: typed ? e.message : (http.STATUS_CODES[e.status] ?? 'Error'),
    status: e.status,
    code: e.code,
    detail: e.message,
  };
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json', ...carried };
  const mismatch = (cause as { mismatch?: { expected: number; provided: number } } | null | undefined)?.mismatch;
  if (mismatch) {
    // "The response MUST include the correct offset in the Upload-Offset header field."
    headers['Upload-Offset'] = String(mismatch.expected);
    body['expected-offset'] = mismatch.expected;
    body['provided-offset'] = mismatch.provided;
  }
  sendDraft(res, e.status, headers, JSON.stringify(body));
}

const hasBody = (req: express.Request) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';

/**
 * A request node's parser refused before any route (client-errors.ts), answered on its socket. The
 * route is unknown, so the answer takes the tus routes' form (`ERR_CODE: message`, Tus-Resumable):
 * tus clients are the ones whose requests carry large headers (Upload-Metadata), and the code reads
 * the same in any client. An answer to HEAD has no body, whatever its status.
 */
export function answerUnparsed(socket: Duplex, entry: ErrorEntry, onHead: boolean, cause: string, log: Log): void {
  const body = onHead ? '' : `${entry.code}: ${entry.message}\n`;
  socket.end(
    `HTTP/1.1 ${entry.status} ${http.STATUS_CODES[entry.status]}\r\n` +
      `Tus-Resumable: ${TUS_VERSION}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  countTusError(entry.status, entry.code);
  const fields = { event: 'request.refused', status: entry.status, code: entry.code };
  log(`refused a request node could not parse: ${entry.status} ${entry.code} (${cause})`, fields);
}
