// A raw HTTP/1.1 client for the IETF Resumable Uploads draft: sends one request on its own
// connection and reads every answer to it, 104 interim answers first, then the final one.
import crypto from 'node:crypto';
import tls from 'node:tls';
import { openRaw, parseResponse, type RawConnection, type RawResponse } from './raw-http.ts';

export interface DraftExchange {
  interim: RawResponse[];
  final: RawResponse;
  conn: RawConnection;
}

/** Reads answers off the connection until a final (non-1xx) one; the 1xx before it are `interim`. */
export async function readAnswers(
  conn: RawConnection,
  head = false,
): Promise<{ interim: RawResponse[]; final: RawResponse }> {
  const interim: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const eof = conn.isClosed();
    const parsed = parseResponse(conn.received().subarray(at), eof, head);
    if (parsed) {
      at += parsed.length;
      if (parsed.status >= 200) return { interim, final: parsed };
      interim.push(parsed);
      continue;
    }
    if (eof)
      throw new Error(
        `connection closed before a final answer: ${JSON.stringify(conn.received().toString('latin1').slice(0, 300))}`,
      );
    await nextData(conn);
  }
}

/** Reads answers until `count` interim ones have arrived (the final may not come at all). */
export async function readInterim(conn: RawConnection, count: number): Promise<RawResponse[]> {
  for (;;) {
    const found: RawResponse[] = [];
    let at = 0;
    for (;;) {
      const parsed = parseResponse(conn.received().subarray(at), false, false);
      if (!parsed || parsed.status >= 200) break;
      found.push(parsed);
      at += parsed.length;
    }
    if (found.length >= count) return found;
    if (conn.isClosed()) throw new Error('connection closed before the interim answers');
    await nextData(conn);
  }
}

function nextData(conn: RawConnection): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      conn.socket.off('data', done);
      conn.socket.off('close', done);
      resolve();
    };
    conn.socket.once('data', done);
    conn.socket.once('close', done);
  });
}

export function requestHead(method: string, url: string, headers: Record<string, string | number>): string {
  const u = new URL(url);
  let head = `${method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return `${head}\r\n`;
}

/** One request with its whole body; its answers. */
export async function exchange(
  method: string,
  url: string,
  headers: Record<string, string | number>,
  body: Buffer = Buffer.alloc(0),
): Promise<DraftExchange> {
  const conn = await openRaw(url);
  const withLength =
    method === 'HEAD' || method === 'GET' || method === 'DELETE' || method === 'OPTIONS'
      ? headers
      : { 'Content-Length': body.length, ...headers };
  conn.socket.write(Buffer.concat([Buffer.from(requestHead(method, url, withLength), 'latin1'), body]));
  const answers = await readAnswers(conn, method === 'HEAD');
  conn.socket.destroy();
  return { ...answers, conn };
}

export const md5Hex = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');
export const digestB64 = (alg: string, b: Buffer) => crypto.createHash(alg).update(b).digest('base64');

/** A raw connection over TLS (any certificate accepted: the test made its own). */
export function openRawTls(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false });
    const chunks: Buffer[] = [];
    let closedNow = false;
    const closed = new Promise<void>((done) => socket.once('close', () => ((closedNow = true), done())));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.once('secureConnect', () =>
      resolve({ socket, received: () => Buffer.concat(chunks), closed, isClosed: () => closedNow }),
    );
    socket.once('error', reject);
  });
}

/** Every answer on the connection, in order, until `finals` final (non-1xx) answers have come. */
export async function readSequence(conn: RawConnection, finals: number): Promise<RawResponse[]> {
  for (;;) {
    const answers: RawResponse[] = [];
    let at = 0;
    let count = 0;
    for (;;) {
      const parsed = parseResponse(conn.received().subarray(at), conn.isClosed(), false);
      if (!parsed) break;
      answers.push(parsed);
      at += parsed.length;
      if (parsed.status >= 200 && ++count === finals) return answers;
    }
    if (conn.isClosed()) throw new Error(`connection closed after ${answers.length} answers`);
    await nextData(conn);
  }
}
