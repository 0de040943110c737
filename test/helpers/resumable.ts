// Segments of the nginx upload module's resumable mode (POST /upload with Session-ID and
// X-Content-Range), sent whole or held: the heads of several segments first, their bodies later, so
// the server has them all in hand at once.
import http from 'node:http';
import net from 'node:net';
import { parseResponse } from './raw-http.ts';

export type Range = [start: number, end: number];

export interface SegmentAnswer {
  status: number;
  /** The Range header: `a-b,c-d/total`. */
  range: string | null;
  body: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
}

export interface SegmentOptions {
  /** The whole file: the segment sends bytes a..b of it. */
  bytes: Buffer;
  /** Headers added to (or replacing) the segment's own. */
  headers?: Record<string, string>;
  /** The client's address (127.0.0.x: another anonymous caller). */
  localAddress?: string;
  filename?: string;
}

function segmentHeaders(session: string, [a, b]: Range, o: SegmentOptions): Record<string, string> {
  return {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': `attachment; filename="${o.filename ?? 'segments.bin'}"`,
    'X-Content-Range': `bytes ${a}-${b}/${o.bytes.length}`,
    'Session-ID': session,
    'Content-Length': String(b - a + 1),
    ...o.headers,
  };
}

/** Sends one segment and waits for its answer. */
export function sendSegment(url: string, session: string, range: Range, o: SegmentOptions): Promise<SegmentAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/upload`,
      { method: 'POST', headers: segmentHeaders(session, range, o), localAddress: o.localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)]));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            range: headers.range ?? null,
            body: Buffer.concat(chunks).toString(),
            headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.bytes.subarray(range[0], range[1] + 1));
  });
}

export interface HeldSegments {
  /** Writes every held segment's body at once. */
  sendBodies(): void;
  /** The answers, in the order the segments were given. */
  answers: Promise<SegmentAnswer[]>;
}

/**
 * Opens one connection per segment and writes every head, no body yet. Resolves once all heads are
 * written: the server then holds every request and waits for its body.
 */
export async function holdSegments(
  url: string,
  session: string,
  ranges: Range[],
  o: SegmentOptions,
): Promise<HeldSegments> {
  const { hostname, port } = new URL(url);
  const sockets = await Promise.all(
    ranges.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect({ host: hostname, port: Number(port), localAddress: o.localAddress });
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  const answers = sockets.map(
    (socket) =>
      new Promise<SegmentAnswer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', () => undefined);
        socket.once('close', () => {
          try {
            const r = parseResponse(Buffer.concat(chunks), true);
            if (!r) return reject(new Error('the connection closed without an answer'));
            resolve({ status: r.status, range: r.headers.range ?? null, body: r.body.toString(), headers: r.headers });
          } catch (e) {
            reject(e as Error);
          }
        });
      }),
  );
  // Every head in one synchronous run: they reach the server together.
  ranges.forEach((range, i) => {
    const headers = { Host: `${hostname}:${port}`, Connection: 'close', ...segmentHeaders(session, range, o) };
    sockets[i]!.write(
      `POST /upload HTTP/1.1\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}\r\n`,
    );
  });
  return {
    sendBodies: () => ranges.forEach(([a, b], i) => sockets[i]!.write(o.bytes.subarray(a, b + 1))),
    answers: Promise.all(answers),
  };
}

/** `a-b,c-d/total` as ranges (inclusive ends). */
export function parseRanges(text: string | null): Range[] {
  if (!text) return [];
  const list = text.trim().split('/')[0]!;
  return list ? list.split(',').map((r) => r.split('-').map(Number) as Range) : [];
}

/** Ranges sorted and merged (touching ranges join). */
export function mergeRanges(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Whether every byte of `inner` lies in `outer`. */
export const rangesWithin = (inner: Range[], outer: Range[]): boolean =>
  inner.every(([a, b]) => outer.some(([x, y]) => x <= a && b <= y));
