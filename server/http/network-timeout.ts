// tusd's network timeout (NETWORK_TIMEOUT): a connection that stops moving is cut, so clients that
// open connections and go quiet cannot hold the server's descriptors and upload locks for ever.
//
// What counts as stopped, and what does not:
// - headers that take longer than the timeout: node's headersTimeout (answered 408 by node, closed);
// - a request body we are waiting for (nothing buffered) with no byte arriving for the timeout:
//   cut. A body we hold back ourselves (the disk or the hashing thread is slow) is not idle;
// - response bytes waiting for a client that stopped reading, none leaving for the timeout: cut;
// - an idle keep-alive connection: node's keepAliveTimeout, at most the network timeout.
// The time the server spends answering (a completion hook after the last byte) is not limited:
// nothing is then owed by the client.
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { answerClientErrors } from './client-errors.ts';
import { markCut } from './dropped-requests.ts';

/** Why a body is cut: it went idle (NETWORK_TIMEOUT), or the server is stopping (SHUTDOWN_TIMEOUT passed). */
export type BodyCut = 'idle' | 'shutdown';

/** Handlers that replace "destroy the connection" when a request's body goes idle or the server stops. */
const bodyIdleHandlers = new WeakMap<http.IncomingMessage, (reason: BodyCut) => void>();

/**
 * While `handler` is set, an idle body calls it instead of destroying the connection (a PATCH stops
 * reading, keeps the bytes and answers 408). Returns the function that unsets it. If the body is
 * still idle a timeout later (the handler's answer did not get out), the connection is destroyed.
 */
export function onBodyIdle(req: http.IncomingMessage, handler: (reason: BodyCut) => void): () => void {
  bodyIdleHandlers.set(req, handler);
  return () => {
    if (bodyIdleHandlers.get(req) === handler) bodyIdleHandlers.delete(req);
  };
}

/**
 * An HTTP server for `app` that cuts connections which stop moving for `timeoutMs`; HTTPS with `tls`
 * (server/config/tls.ts). node's https.Server is its http server on TLS sockets: the same timeouts, events
 * and request objects, so everything below (and callers typed on http.Server) holds for both.
 */
export function createHttpServer(
  app: http.RequestListener,
  timeoutMs: number,
  log: (line: string) => void,
  tls?: https.ServerOptions,
): http.Server {
  // node checks headersTimeout on this interval (default 30 s): a short timeout needs a short check.
  const options = { connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.ceil(timeoutMs / 4))) };
  const server = tls
    ? (https.createServer({ ...tls, ...options }, app) as unknown as http.Server)
    : http.createServer(options, app);
  // Uploads of many GiB take long: no limit on a whole request, only on a connection that stalls.
  server.requestTimeout = 0;
  server.headersTimeout = timeoutMs;
  server.keepAliveTimeout = Math.min(server.keepAliveTimeout, timeoutMs);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => watch(req, res, timeoutMs, log));
  answerClientErrors(server, log);
  trackRequests(server);
  lingerBeforeClosing(server, timeoutMs);
  return server;
}

/** Longest a connection answered before its request body arrived keeps taking that body in (nginx's lingering_time is
 * 30 s). */
const LINGER_MS = 5000;

/**
 * An answer that closes the connection (Connection: close) before the request's body has arrived —
 * a refusal that reads none of it (413, 507, 400) — must reach a client that is still sending: TCP
 * resets a connection closed with unread bytes in it, and the reset makes the client's system drop
 * the answer it had received and not yet read (a client that reads once it has sent everything lost
 * every such answer). So the connection closes its sending side after the answer and keeps taking in,
 * and dropping, what the client still sends: until the body ends, the client closes, or LINGER_MS
 * (at most NETWORK_TIMEOUT) has passed — nginx's lingering close.
 */
function lingerBeforeClosing(server: http.Server, timeoutMs: number): void {
  const current = new WeakMap<object, http.IncomingMessage>();
  server.on('request', (req: http.IncomingMessage) => {
    const socket = req.socket as http.IncomingMessage['socket'] & { destroySoon?: () => void };
    const first = !current.has(socket);
    current.set(socket, req);
    // node closes a connection after its last answer with destroySoon(): end, then destroy once the
    // answer is written.
    if (!first || typeof socket.destroySoon !== 'function') return;
    const destroySoon = socket.destroySoon.bind(socket);
    socket.destroySoon = () => {
      const unread = current.get(socket);
      if (!unread || unread.complete || socket.destroyed || !socket.writable) return destroySoon();
      // Whoever read the body has stopped: what still comes is dropped.
      unread.unpipe();
      unread.removeAllListeners('readable');
      unread.on('data', () => undefined);
      unread.resume();
      const timer = setTimeout(() => socket.destroy(), Math.min(LINGER_MS, timeoutMs));
      timer.unref();
      const done = () => socket.destroy();
      unread.once('end', done);
      unread.once('error', done);
      socket.once('close', () => clearTimeout(timer));
      socket.end();
    };
  });
}

/** A server's requests in flight, and whether it is stopping (for a graceful stop). */
interface Tracked {
  requests: Map<http.IncomingMessage, http.ServerResponse>;
  stopping: boolean;
}
const tracked = new WeakMap<http.Server, Tracked>();

function trackRequests(server: http.Server): void {
  const state: Tracked = { requests: new Map(), stopping: false };
  tracked.set(server, state);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    state.requests.set(req, res);
    // A request that arrives on a kept-alive connection while stopping is served, then the connection closes.
    if (state.stopping) res.shouldKeepAlive = false;
    res.once('close', () => state.requests.delete(req));
  });
}

/** Whether stopServer() was called on this server. */
export function isStopping(server: http.Server): boolean {
  return tracked.get(server)?.stopping ?? false;
}

/** After the grace period, how long cut PATCHes get to write their answers before connections are destroyed. */
const CUT_ANSWER_MS = 500;

/**
 * A graceful stop (SHUTDOWN_TIMEOUT, tusd's -shutdown-timeout): no new connections; requests in flight
 * get `graceMs` to finish, and every connection closes once its answer is out. Then bodies still
 * arriving are cut as an idle body is — a PATCH stops reading, keeps the bytes received, saves its
 * digest state and answers (503 ERR_SHUTTING_DOWN with Upload-Offset) — and what is left after
 * CUT_ANSWER_MS more is destroyed. Resolves once every connection is closed.
 */
export async function stopServer(server: http.Server, graceMs: number, log: (line: string) => void): Promise<void> {
  const state = tracked.get(server) ?? { requests: new Map(), stopping: false };
  state.stopping = true;
  for (const res of state.requests.values()) res.shouldKeepAlive = false;
  let done = false;
  const closed = new Promise<void>((resolve) => server.close(() => resolve())).then(() => void (done = true));
  // Connections whose answer went out before they were told to close are idle now, or will be.
  const sweeper = setInterval(() => server.closeIdleConnections(), 50);
  server.closeIdleConnections();
  const within = (ms: number) => Promise.race([closed, new Promise<void>((r) => setTimeout(r, ms).unref())]);
  try {
    await within(graceMs);
    if (done) return;
    let cut = 0;
    for (const req of state.requests.keys()) {
      const handler = bodyIdleHandlers.get(req);
      if (!handler) continue;
      bodyIdleHandlers.delete(req);
      handler('shutdown');
      cut++;
    }
    log(
      `shutdown: ${state.requests.size} request(s) still in flight after SHUTDOWN_TIMEOUT (${graceMs} ` +
        `ms)${cut ? `; ${cut} upload(s) cut, the bytes received kept` : ''}`,
    );
    await within(CUT_ANSWER_MS);
    if (done) return;
    for (const req of state.requests.keys()) markCut(req, 'shutdown');
    server.closeAllConnections();
    await closed;
  } finally {
    clearInterval(sweeper);
  }
}

/**
 * Watches one request until its response closes: polled every quarter of the timeout (one timer per
 * request, nothing per chunk), so a stall is cut between 1 and 1.25 timeouts after the last byte.
 */
function watch(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  timeoutMs: number,
  log: (line: string) => void,
): void {
  const socket = req.socket;
  const step = Math.max(10, Math.ceil(timeoutMs / 4));
  let read = socket.bytesRead;
  let written = socket.bytesWritten;
  let since = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    timer = undefined;
    if (socket.destroyed) return;
    // Waiting for body bytes: the request is not complete and nothing of it is left unread.
    const reading = !req.complete && !req.destroyed && req.readableLength === 0;
    // Response bytes the client has not taken.
    const writing = socket.writableLength > 0;
    const now = performance.now();
    if (socket.bytesRead !== read || socket.bytesWritten !== written || !(reading || writing)) {
      read = socket.bytesRead;
      written = socket.bytesWritten;
      since = now;
    } else if (now - since >= timeoutMs) {
      const handler = reading ? bodyIdleHandlers.get(req) : undefined;
      if (handler) {
        bodyIdleHandlers.delete(req);
        log(`network timeout: ${req.method} ${req.url}: no body byte for ${timeoutMs} ms; the bytes received are kept`);
        handler('idle');
        since = now;
      } else {
        log(
          `network timeout: ${req.method} ${req.url}: ` +
            `${reading ? 'no body byte' : 'the client took no response byte'} for ${timeoutMs} ms; connection closed`,
        );
        markCut(req, 'network_timeout');
        socket.destroy();
        return;
      }
    }
    timer = setTimeout(tick, step);
    timer.unref();
  };
  timer = setTimeout(tick, step);
  timer.unref();
  res.once('close', () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  });
}
