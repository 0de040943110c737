// A load balancer for tests, in the place nginx has in deploy/nginx.conf: round robin over the
// instances, no sticky sessions, request bodies streamed through as they come (slowed down to
// `bytesPerSecond` per request if asked, as a slow client's would be). As nginx's defaults do
// (proxy_next_upstream error): an instance refusing the connection is skipped, and a HEAD, GET or
// OPTIONS whose instance fails before answering goes to the next one; any other request then gets
// 502. Every answer is recorded — method, path, status, the headers a tus client acts on, which
// instance answered — so a test can check what clients were told during a fault.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface Exchange {
  method: string;
  path: string;
  status: number;
  /** When the answer came (ms since the epoch). */
  at: number;
  /** The instance that answered; '' for the balancer's own 502. */
  backend: string;
  location?: string;
  offset?: string;
  completion?: string;
}

export interface Balancer {
  url: string;
  exchanges: Exchange[];
}

/** Requests that may go to another instance after one failed: nginx's idempotent methods without a body. */
const RETRIED = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Bodies go through in slices this large, so slowing them down is smooth. */
const SLICE = 16 * 1024;

export async function startBalancer(
  t: TestContext,
  backends: readonly string[],
  options: { bytesPerSecond?: number } = {},
): Promise<Balancer> {
  const exchanges: Exchange[] = [];
  let next = 0;
  const server = http.createServer((req, res) => {
    const first = next++ % backends.length;
    const order = backends.map((_, i) => backends[(first + i) % backends.length]!);
    forward(req, res, order, 0);
  });

  function record(
    req: http.IncomingMessage,
    status: number,
    backend: string,
    headers: http.IncomingHttpHeaders = {},
  ): void {
    exchanges.push({
      method: req.method!,
      path: req.url!,
      status,
      at: Date.now(),
      backend,
      ...(headers.location && { location: String(headers.location) }),
      ...(headers['upload-offset'] && { offset: String(headers['upload-offset']) }),
      ...(headers['tuspass-completion'] && { completion: String(headers['tuspass-completion']) }),
    });
  }

  function forward(req: http.IncomingMessage, res: http.ServerResponse, order: string[], tried: number): void {
    const backend = order[tried];
    if (backend === undefined) {
      record(req, 502, '');
      res.writeHead(502).end();
      return;
    }
    const target = new URL(backend);
    // The client's Host header stays (nginx: proxy_set_header Host $http_host): upload URLs name the balancer.
    const up = http.request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: false,
    });
    let connected = false;
    let answered = false;
    up.on('socket', (socket) =>
      socket.once('connect', () => {
        connected = true;
        void pump(req, up, options.bytesPerSecond);
      }),
    );
    up.on('response', (answer) => {
      answered = true;
      record(req, answer.statusCode!, backend, answer.headers);
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    up.on('error', () => {
      if (answered) return void res.destroy();
      // Refused (nothing of the request sent), or a request that may be sent again: the next instance.
      if (!connected || RETRIED.has(req.method!)) return forward(req, res, order, tried + 1);
      record(req, 502, '');
      if (!res.headersSent) res.writeHead(502, { Connection: 'close' }).end();
      else res.destroy();
    });
    // The client went away: so does the request to the instance.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exchanges };
}

/** Passes the request body to the instance, slice by slice, at `rate` bytes a second if given. */
async function pump(req: http.IncomingMessage, up: http.ClientRequest, rate: number | undefined): Promise<void> {
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      for (let at = 0; at < chunk.length; at += SLICE) {
        if (up.destroyed) return;
        const slice = chunk.subarray(at, at + SLICE);
        if (!up.write(slice)) await drainedOrClosed(up);
        if (rate) await new Promise((r) => setTimeout(r, (slice.length / rate) * 1000));
      }
    }
    up.end();
  } catch {
    up.destroy();
  }
}

function drainedOrClosed(up: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      up.off('drain', done);
      up.off('close', done);
      resolve();
    };
    up.on('drain', done);
    up.on('close', done);
  });
}

/**
 * The answers after which tus-js-client 4.3 (and so Uppy) starts an upload over or gives it up, as
 * node_modules/tus-js-client/lib/upload.js decides: a HEAD (how it resumes) answered anything but
 * 2xx or 423 makes it create a new upload (`_resumeUpload`: `if (status === 423) ... retry later`,
 * then `this._createUpload()`); a request answered 4xx other than 409 and 423 is not retried
 * (`defaultOnShouldRetry`). 404 and 410 read "gone" to every tus client.
 */
export function startOverAnswers(exchanges: readonly Exchange[]): Exchange[] {
  const ok = (s: number) => s >= 200 && s < 300;
  return exchanges.filter(
    (x) =>
      (x.method === 'HEAD' && !ok(x.status) && x.status !== 423) ||
      (x.status >= 400 && x.status < 500 && x.status !== 409 && x.status !== 423),
  );
}
