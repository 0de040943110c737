// HTTP/1.1 over a plain TCP socket, for requests no HTTP client would send (malformed headers,
// bodies that stop) and for reading exactly what the server wrote back.
import net from 'node:net';

export interface RawConnection {
  socket: net.Socket;
  /** Everything the server has written so far. */
  received(): Buffer;
  /** Settles when the server (or anything) has closed the connection; true once it has. */
  closed: Promise<void>;
  isClosed(): boolean;
}

/** Opens a connection to the host and port of `url`. */
export function openRaw(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let closedNow = false;
    const closed = new Promise<void>((done) => socket.once('close', () => ((closedNow = true), done())));
    socket.on('data', (c: Buffer) => chunks.push(c));
    // A reset by the server is a close like any other here.
    socket.on('error', () => undefined);
    socket.once('connect', () =>
      resolve({ socket, received: () => Buffer.concat(chunks), closed, isClosed: () => closedNow }),
    );
    socket.once('error', reject);
  });
}

export interface RawResponse {
  status: number;
  statusLine: string;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Parses one complete HTTP/1.1 response from the start of `buf`; undefined while incomplete; throws
 * if what is there is not a well-formed response. `eof`: the connection has ended (a body without
 * length then runs to the end). `head`: the answer to a HEAD (no body, whatever Content-Length says).
 */
export function parseResponse(buf: Buffer, eof = false, head = false): (RawResponse & { length: number }) | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    // Nothing at all before the close is no answer, not a malformed one.
    if (eof && buf.length === 0) return undefined;
    if (eof)
      throw new Error(
        `connection ended inside the response head: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`,
      );
    return undefined;
  }
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = lines[0]!;
  const m = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*$/.exec(statusLine);
  if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!h) throw new Error(`not a header line: ${JSON.stringify(line)}`);
    const name = h[1]!.toLowerCase();
    headers[name] = name in headers ? `${headers[name]}, ${h[2]}` : h[2]!;
  }
  const status = Number(m[1]);
  let at = end + 4;
  const noBody = head || status === 204 || status === 304 || (status >= 100 && status < 200);
  if (noBody) return { status, statusLine, headers, body: Buffer.alloc(0), length: at };
  if (headers['transfer-encoding'] !== undefined) {
    if (!/(^|,\s*)chunked$/i.test(headers['transfer-encoding']))
      throw new Error(`transfer-encoding ${headers['transfer-encoding']}`);
    if (headers['content-length'] !== undefined) throw new Error('both Content-Length and Transfer-Encoding');
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd < 0) return incomplete(eof);
      const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size)) throw new Error('bad chunk size');
      at = lineEnd + 2;
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n', at);
        if (trailerEnd < 0) return incomplete(eof);
        return { status, statusLine, headers, body: Buffer.concat(parts), length: trailerEnd + 2 };
      }
      if (buf.length < at + size + 2) return incomplete(eof);
      parts.push(buf.subarray(at, at + size));
      at += size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    if (!/^\d+$/.test(headers['content-length'])) throw new Error(`Content-Length ${headers['content-length']}`);
    const size = Number(headers['content-length']);
    if (buf.length < at + size) return incomplete(eof);
    return { status, statusLine, headers, body: buf.subarray(at, at + size), length: at + size };
  }
  // No length: the body runs until the connection closes.
  if (!eof) return undefined;
  return { status, statusLine, headers, body: buf.subarray(at), length: buf.length };
}

function incomplete(eof: boolean): undefined {
  if (eof) throw new Error('connection ended inside the response body');
  return undefined;
}

/** Waits for one complete response on the connection (or its close), at most `timeoutMs`. */
export async function readResponse(
  conn: RawConnection,
  timeoutMs: number,
  head = false,
): Promise<RawResponse | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const eof = conn.isClosed();
    const parsed = parseResponse(conn.received(), eof, head);
    if (parsed) return parsed;
    if (eof) return undefined;
    if (Date.now() > until)
      throw new Error(
        `no complete response within ${timeoutMs} ms: ` +
          `${JSON.stringify(conn.received().toString('latin1').slice(0, 200))}`,
      );
    let wake: () => void = () => undefined;
    const more = new Promise<void>((r) => (wake = r));
    conn.socket.once('data', wake);
    const timer = setTimeout(wake, 50);
    await Promise.race([more, conn.closed]);
    clearTimeout(timer);
    conn.socket.off('data', wake);
  }
}

/** One request on its own connection; the answer once the server has closed it, or `timeoutMs` passed. */
export async function rawExchange(
  url: string,
  request: Buffer | string,
  timeoutMs = 5000,
): Promise<{ raw: Buffer; closed: boolean }> {
  const conn = await openRaw(url);
  conn.socket.write(request);
  const timer = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
  await Promise.race([conn.closed, timer]);
  const closed = conn.isClosed();
  conn.socket.destroy();
  return { raw: conn.received(), closed };
}
