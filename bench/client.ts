// The one client both servers get: raw tus 1.0.0 over node:http, request bodies streamed from a file
// with fs.createReadStream (or a Buffer for the small uploads). No tus library in between, so what
// is timed is the server, and the timings (last byte handed to the socket, response read) are exact.
import fs from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';

export const CLIENT_DESCRIPTION =
  'node:http requests (tus 1.0.0 by hand), bodies streamed from the file with fs.createReadStream (1 MiB reads); ' +
  'small uploads from a Buffer over a keep-alive agent';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = 'application/offset+octet-stream';
/** Reads of 1 MiB keep the client cheap next to the server on a 2-core machine. */
const READ_SIZE = 1 << 20;

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Timed {
  answer: Answer;
  startedAt: number;
  /** When the last body byte was handed to the socket (performance.now()). */
  lastByteAt: number;
  /** When the response had been read completely. */
  answeredAt: number;
}

/**
 * A file range; with `settle`, the last `tailBytes` are held back until the body before them has been
 * handed to the socket and `ms` more have passed, so the server has read everything before the tail.
 */
export interface Settle {
  tailBytes: number;
  ms: number;
  /** Also awaited before the tail is sent (after the pause). */
  before?: () => Promise<void>;
}

type Body = Buffer | { file: string; start: number; end: number; settle?: Settle } | undefined;

/** The range as one stream, or as a generator that pauses before the tail. */
function fileBody(body: Exclude<Body, Buffer | undefined>): AsyncIterable<Buffer> | fs.ReadStream {
  const read = (start: number, end: number) =>
    fs.createReadStream(body.file, { start, end: end - 1, highWaterMark: READ_SIZE });
  const settle = body.settle;
  if (!settle || body.end - body.start <= settle.tailBytes) return read(body.start, body.end);
  const split = body.end - settle.tailBytes;
  return (async function* () {
    yield* read(body.start, split) as AsyncIterable<Buffer>;
    await new Promise((resolve) => setTimeout(resolve, settle.ms));
    await settle.before?.();
    yield* read(split, body.end) as AsyncIterable<Buffer>;
  })();
}

/** One request; rejects on a network error, resolves with any status (callers decide what is wrong). */
export function send(
  url: string,
  method: string,
  headers: http.OutgoingHttpHeaders,
  body: Body,
  agent?: http.Agent,
): Promise<Timed> {
  return new Promise<Timed>((resolve, reject) => {
    const startedAt = performance.now();
    let lastByteAt = Number.NaN;
    const req = http.request(url, { method, headers: { ...TUS, ...headers }, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const answeredAt = performance.now();
        // A server may answer before it has read the whole body (an error): then "last byte" is the answer.
        if (Number.isNaN(lastByteAt)) lastByteAt = answeredAt;
        resolve({
          answer: { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') },
          startedAt,
          lastByteAt,
          answeredAt,
        });
      });
    });
    req.on('finish', () => {
      lastByteAt = performance.now();
    });
    req.on('error', (e) => reject(new Error(`${method} ${url}: ${e.message}`)));
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      // A failed request is reported by req's 'error' above; the pipeline's own rejection would repeat it.
      pipeline(fileBody(body), req).catch(() => undefined);
    }
  });
}

function expect(t: Timed, what: string, ok: (status: number) => boolean): Timed {
  if (!ok(t.answer.status)) throw new Error(`${what}: answered ${t.answer.status} ${t.answer.body.slice(0, 200)}`);
  return t;
}

const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;

/** POST: creates an upload of `length` bytes; returns its absolute URL. */
export async function createUpload(
  base: string,
  length: number,
  name = 'bench.bin',
  agent?: http.Agent,
): Promise<string> {
  const t = expect(
    await send(
      `${base}/files/`,
      'POST',
      { 'Upload-Length': length, 'Upload-Metadata': metadata(name) },
      undefined,
      agent,
    ),
    'create',
    (s) => s === 201,
  );
  return new URL(String(t.answer.headers.location), base).toString();
}

/** POST with the whole body (creation-with-upload). */
export async function createWithUpload(
  base: string,
  body: Buffer,
  agent: http.Agent,
  extra: http.OutgoingHttpHeaders = {},
): Promise<Timed & { location: string }> {
  const headers = {
    'Upload-Length': body.byteLength,
    'Upload-Metadata': metadata('small.bin'),
    'Content-Type': OCTETS,
    'Content-Length': body.byteLength,
    ...extra,
  };
  const t = expect(await send(`${base}/files/`, 'POST', headers, body, agent), 'create-with-upload', (s) => s === 201);
  if (t.answer.headers['upload-offset'] !== String(body.byteLength))
    throw new Error(`create-with-upload: offset ${t.answer.headers['upload-offset']}, sent ${body.byteLength}`);
  return { ...t, location: new URL(String(t.answer.headers.location), base).toString() };
}

/** PATCH bytes [start, end) of the file in one request. Any 2xx is success: tuspass relays the completion answer. */
export async function patchFile(
  location: string,
  file: string,
  start: number,
  end: number,
  extra: http.OutgoingHttpHeaders = {},
  settle?: Settle,
): Promise<Timed> {
  const headers = { 'Upload-Offset': start, 'Content-Type': OCTETS, 'Content-Length': end - start, ...extra };
  return expect(
    await send(location, 'PATCH', headers, { file, start, end, settle }),
    `PATCH ${location}`,
    (s) => s >= 200 && s < 300,
  );
}

/** HEAD: the server's offset. */
export async function headOffset(location: string): Promise<Timed & { offset: number }> {
  const t = expect(await send(location, 'HEAD', {}, undefined), `HEAD ${location}`, (s) => s === 200);
  return { ...t, offset: Number(t.answer.headers['upload-offset']) };
}

/** The upload id: the last path segment of its URL. */
export const uploadId = (location: string): string =>
  decodeURIComponent(new URL(location).pathname.split('/').pop() ?? '');
