// Outgoing HTTP for the server process: completion forms, HTTP hooks, the /api/uploads pass-through.
// node:http rather than fetch or undici: the server has node:http loaded already, and fetch's stack
// (undici) adds about 20 MB of resident memory to every upload server for a few small POSTs.
// Connections are kept alive and reused, one pool per protocol.
import http from 'node:http';
import https from 'node:https';
import { errorText } from './logger.ts';

const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A failure before a whole answer arrived: unreachable, timed out, aborted, or cut off. `code` is the system's
 * (ECONNREFUSED...). */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** How a failed request is named in logs and retries: the system's code when there is one. */
export const failureOf = (e: unknown): string => (e instanceof TransportError ? (e.code ?? e.message) : errorText(e));

/**
 * Starts a request. The timeout is a plain timer, strongly held until the exchange settles, that
 * destroys the request: a signal built with AbortSignal.any([AbortSignal.timeout(ms)]) was measured
 * on Node 20.20 to be collected by a major GC and never fire, leaving a request to a service that
 * accepts and never answers hanging forever (and SIGTERM waiting on it).
 */
function send(url: string, options: RequestOptions): { req: http.ClientRequest; settled: () => void } {
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  const headers: Record<string, string | number> = { ...options.headers };
  if (options.body !== undefined) headers['Content-Length'] = Buffer.byteLength(options.body);
  const req = lib.request(target, {
    method: options.method ?? 'GET',
    headers,
    agent: agents[target.protocol as 'http:' | 'https:'],
    signal: options.signal,
  });
  let timer: NodeJS.Timeout | undefined;
  if (options.timeoutMs !== undefined) {
    const ms = options.timeoutMs;
    timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer in ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  }
  const settled = () => clearTimeout(timer);
  req.end(options.body);
  return { req, settled };
}

/** Sends a request and reads the whole answer as text. Throws TransportError when none arrives. */
export function requestText(url: string, options: RequestOptions = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const { req, settled } = send(url, options);
    const fail = (e: NodeJS.ErrnoException) => {
      settled();
      reject(new TransportError(e.name === 'AbortError' ? 'no answer in time (aborted)' : e.message, e.code));
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('aborted', () => fail(Object.assign(new Error('answer cut off'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        settled();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
  });
}

/** Sends a request and hands back the answer as a stream (for passing it on); a timeout covers the whole answer. */
export function requestStream(url: string, options: RequestOptions = {}): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const { req, settled } = send(url, options);
    req.on('error', (e: NodeJS.ErrnoException) => {
      settled();
      reject(new TransportError(e.message, e.code));
    });
    req.on('response', (res) => {
      res.once('close', settled);
      resolve(res);
    });
  });
}
