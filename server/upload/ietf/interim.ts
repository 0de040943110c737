// 104 (Upload Resumption Supported) interim answers. Node 20 writes 100, 102 and 103 itself but
// has no call for another 1xx, so the status line and fields are written here, through the same
// internal path node's writeEarlyHints (103) and writeContinue (100) take. _writeRaw writes to the
// socket only while this response owns it and queues otherwise, but a final answer made while its
// response is still queued (a request pipelined behind another answer) puts its head in front of
// that queue: a queued 104 would then land between the final answer's head and its body. So the
// 104 of a queued response waits until the response owns the socket, and is dropped if the final
// answer was made by then. Over TLS the socket is the TLS stream, which frames what is written
// like any answer.
import type { IncomingMessage, ServerResponse } from 'node:http';

const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible characters, spaces and tabs only: no CR or LF can end the field early. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

type RawWriter = { _writeRaw?: (data: string, encoding: BufferEncoding) => boolean };

/**
 * Writes one 104 answer before the final one (once the response owns the connection: see above).
 * Returns false (and writes nothing) where it cannot be written correctly: after the final
 * answer's header was made, on a connection that is not HTTP/1.1 ("a server MUST NOT send a 1xx
 * response to an HTTP/1.0 client"), on a closed connection, or with a field that would not be one
 * line.
 */
export function sendInterim(req: IncomingMessage, res: ServerResponse, fields: Record<string, string>): boolean {
  const raw = (res as unknown as RawWriter)._writeRaw;
  const open = () =>
    typeof raw === 'function' && !res.headersSent && !res.writableEnded && !res.destroyed && !req.socket.destroyed;
  if (!open()) return false;
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return false;
  let head = 'HTTP/1.1 104 Upload Resumption Supported\r\n';
  for (const [name, value] of Object.entries(fields)) {
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) return false;
    head += `${name}: ${value}\r\n`;
  }
  const write = () => void (open() && raw!.call(res, `${head}\r\n`, 'latin1'));
  // Queued behind another answer: node emits 'socket' when this response takes the connection,
  // before it writes anything of its own.
  if (res.socket === null || (res.socket as { _httpMessage?: unknown })._httpMessage !== res) res.once('socket', write);
  else write();
  return true;
}
