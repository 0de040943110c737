// A request whose connection goes before its answer is no failure of the server: nothing can be
// answered, and what its body brought stays where the route keeps partial bodies (a tus PATCH keeps
// every byte written, a resumable segment what reached the front of its file; a checksummed body, a
// multipart request and a tus creation-with-upload — whose client never got its Location — keep
// nothing of a cut body). Such a request is one info line (where its body
// stopped, what was kept, why the connection went) and one count in tuspass_requests_dropped_total:
// never a 500, never ERR_INTERNAL, and not in tusd_errors_total, which counts answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { errorText, pathForLog, type Log } from '../../core/logger.ts';
import { requestsDropped } from '../ops/metrics.ts';
import { requestIdOf } from './request-id.ts';

export type DropCause = 'client_closed' | 'taken_over' | 'network_timeout' | 'shutdown';

const WHY: Record<DropCause, string> = {
  client_closed: 'the client closed the connection',
  taken_over: 'cut for another request on the same upload (a client resuming)',
  network_timeout: 'cut by NETWORK_TIMEOUT',
  shutdown: 'cut by the server stopping (SHUTDOWN_TIMEOUT)',
};

/** Requests the server cut itself, and why; a connection gone without a note is the client's doing. */
const cutBy = new WeakMap<IncomingMessage, DropCause>();

/** Notes why the server is about to destroy this request's connection (the first reason stays). */
export function markCut(req: IncomingMessage, cause: Exclude<DropCause, 'client_closed'>): void {
  if (!cutBy.has(req)) cutBy.set(req, cause);
}

/**
 * A body that stopped because its connection went, with what of it was read and kept (thrown by the
 * store's append, store/append.ts). Still ERR_UPLOAD_INTERRUPTED where a client is left to answer.
 */
export class BodyInterrupted extends TuspassError {
  constructor(
    readonly uploadId: string,
    /** Bytes of the body read before it stopped. */
    readonly received: number,
    /** Bytes of it in the store now (0 when none could be kept: a checksummed body). */
    readonly kept: number,
    /** The upload's offset now. */
    readonly offset: number,
    cause: unknown,
  ) {
    super(ERRORS.ERR_UPLOAD_INTERRUPTED, undefined, errorText(cause));
  }
}

/** Codes a body's stream fails with when its connection goes (node's `aborted`, a destroyed request, a reset). */
const CONNECTION_GONE = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

export const isConnectionGone = (e: unknown): boolean =>
  CONNECTION_GONE.has(String((e as { code?: unknown } | undefined)?.code));

/** No answer reached the client, nor can one now: its connection went before the answer was sent whole. */
export function answerLost(req: IncomingMessage, res: ServerResponse): boolean {
  const socket = req.socket as IncomingMessage['socket'] | null;
  // An answer sent whole was not dropped, whatever became of the connection after.
  return !(res.writableFinished || (!res.destroyed && socket && !socket.destroyed));
}

/**
 * For each service's error responder, before it answers: when the request's connection is gone, logs
 * the one line, counts it, and returns true (there is no one to answer). `keepsPartialBodies`: the
 * route keeps the bytes of a cut body (the tus routes) rather than none of them.
 */
export function noteDropped(
  req: IncomingMessage,
  res: ServerResponse,
  e: unknown,
  log: Log,
  keepsPartialBodies: boolean,
): boolean {
  if (!answerLost(req, res)) return false;
  const cause = cutBy.get(req) ?? 'client_closed';
  requestsDropped.labels(cause).inc();
  const path = pathForLog((req as { originalUrl?: string }).originalUrl ?? req.url);
  const length = req.headers['content-length'];
  const cut = e instanceof BodyInterrupted ? e : undefined;
  let text: string;
  if (!cut) text = `before its answer (${errorText(e)})`;
  else {
    text = `at byte ${cut.received} of the body${length !== undefined ? ` (Content-Length ${length})` : ''}`;
    text += keepsPartialBodies
      ? `; ${cut.kept} bytes of it kept, upload ${cut.uploadId} is at offset ${cut.offset}`
      : '; nothing of it kept';
  }
  log(`dropped ${req.method} ${path}: ${WHY[cause]} ${text}`, {
    event: 'request.dropped',
    cause,
    received: cut?.received,
    kept: cut ? (keepsPartialBodies ? cut.kept : 0) : undefined,
    upload_id: cut?.uploadId ?? /^\/files\/([^/?#]+)/i.exec(path)?.[1],
    request_id: requestIdOf(req),
  });
  return true;
}
