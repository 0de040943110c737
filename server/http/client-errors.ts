// Requests node's HTTP parser refuses before any route runs — headers past its limit (16 KiB), a
// malformed request line or header, headers slower than NETWORK_TIMEOUT — get node's own answer by
// default: a bare status line, no code, no Tus-Resumable. They are answered from the error table
// instead, by the one error responder (error-answer.ts answerUnparsed), in the tus routes' form.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorEntry } from '../../core/errors.ts';
import type { Log } from '../../core/logger.ts';
import { answerUnparsed } from './error-answer.ts';

/** node's parser and timeout error codes, by what they mean to the client. */
const BY_NODE_CODE: Record<string, ErrorEntry> = {
  HPE_HEADER_OVERFLOW: ERRORS.ERR_HEADERS_TOO_LARGE,
  ERR_HTTP_REQUEST_TIMEOUT: ERRORS.ERR_HEADERS_TIMEOUT,
};

/** Answers the requests `server`'s parser refuses in the one error format (node's 'clientError'). */
export function answerClientErrors(server: http.Server, log: Log): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Nothing to answer on a connection the client already dropped, or one whose answer has begun
    // (node's own handler makes the same checks).
    const answering = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) return void socket.destroy();
    // The connection ended in the middle of a request a route is serving (its body cut short): no
    // malformed request, a dropped one, which that route logs and counts (dropped-requests.ts).
    if (err.code === 'HPE_INVALID_EOF_STATE' && answering) return void socket.destroy();
    const entry = BY_NODE_CODE[err.code ?? ''] ?? ERRORS.ERR_REQUEST_MALFORMED;
    // An answer to HEAD has no body, whatever its status (a client reads none and would take the
    // body's bytes for the next answer).
    answerUnparsed(socket, entry, failedOnHead(err), err.code ?? err.message, log);
  });
}

/**
 * A request line, `METHOD target HTTP/1.x`, matched against one line at a time, anchored at its
 * start: a pattern run over the whole packet unanchored tried every position of a long run of capital
 * letters (a header value of them) and backtracked through the rest of it — seconds of the event
 * loop, every request stalled, for one 64 KiB header.
 */
const REQUEST_LINE = /^([A-Z]+) [^ \r\n]+ HTTP\/1\.\d\r?$/;

/**
 * Whether the request node failed on is a HEAD: the last request line in the bytes parsed before the
 * failure (node hands them over as rawPacket and bytesParsed). Unknown is not HEAD.
 */
function failedOnHead(err: Error & { rawPacket?: Buffer; bytesParsed?: number }): boolean {
  const raw = err.rawPacket;
  if (!Buffer.isBuffer(raw)) return false;
  const lines = raw
    .subarray(0, Math.min(raw.length, (err.bytesParsed ?? raw.length) + 1))
    .toString('latin1')
    .split('\n');
  // The last line is only a request line once its end is among the bytes parsed.
  lines.pop();
  let method: string | undefined;
  for (const line of lines) method = REQUEST_LINE.exec(line)?.[1] ?? method;
  return method === 'HEAD';
}
