// Connections that go quiet must not hold the server. NETWORK_TIMEOUT (tusd's
// --network-timeout): a request body idle that long is cut — the bytes so far kept, the digest state
// saved, the lock released, the upload resumable; slow headers, idle keep-alive connections and
// clients that stop reading answers are closed as well. Real sockets (node:net), short timeouts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import type { HookHandler } from '../hooks/types.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { openRaw, readResponse, type RawConnection } from './helpers/raw-http.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, metadata, patch, tus } from './helpers/tus.ts';

const TIMEOUT = 500;
const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function patchHead(url: string, offset: number, contentLength: number, extra = ''): string {
  const { pathname, host } = new URL(url);
  return (
    `PATCH ${pathname} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nContent-Type: ` +
    `application/offset+octet-stream\r\nUpload-Offset: ${offset}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`
  );
}

/** Resolves once the connection is closed; rejects if that takes longer than `ms`. */
async function closedWithin(conn: RawConnection, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    conn.closed,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms))),
  ]);
  clearTimeout(timer);
}

test('a PATCH body that stops is cut after NETWORK_TIMEOUT: 408, \
bytes kept, lock released, resumable to the right md5', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT });
  const bytes = patternBytes(1_000_000);
  const url = await create(s.endpoint, bytes.length, { filename: 'stalled.bin' });

  const conn = await openRaw(url);
  conn.socket.write(patchHead(url, 0, bytes.length));
  conn.socket.write(bytes.subarray(0, 300_000));
  const answer = await readResponse(conn, TIMEOUT * 6);
  assert.ok(answer, 'answered before the connection closed');
  assert.equal(answer.status, 408);
  assert.match(answer.body.toString(), /^ERR_BODY_TIMEOUT/);
  assert.equal(answer.headers.connection, 'close');
  assert.equal(answer.headers['upload-offset'], '300000');
  await closedWithin(conn, TIMEOUT * 4, 'the cut connection');

  // The lock is free (HEAD would wait for it), the kept bytes are there.
  const head = await tus('HEAD', url);
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], '300000');
  const last = await patch(url, 300_000, bytes.subarray(300_000));
  assert.equal(last.status, 200, last.body);
  assert.equal(JSON.parse(last.body).md5, md5(bytes), 'the digest state was saved with the kept bytes');
  assert.ok(
    s.logs.some((l) => l.includes('network timeout')),
    'the cut is logged',
  );
});

test('a PATCH with its headers and no body byte is cut as well (408, offset unchanged)', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT });
  const url = await create(s.endpoint, 1000);
  const conn = await openRaw(url);
  conn.socket.write(patchHead(url, 0, 1000));
  const answer = await readResponse(conn, TIMEOUT * 6);
  assert.equal(answer?.status, 408);
  assert.equal(answer?.headers['upload-offset'], '0');
  await closedWithin(conn, TIMEOUT * 4, 'the cut connection');
  assert.equal((await patch(url, 0, patternBytes(1000))).status, 200);
});

test('a checksummed PATCH that stops keeps nothing of its \
body (it cannot be verified) and frees the upload', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT });
  const bytes = patternBytes(1000);
  const url = await create(s.endpoint, bytes.length);
  const conn = await openRaw(url);
  const sha1 = (await import('node:crypto')).createHash('sha1').update(bytes).digest('base64');
  conn.socket.write(patchHead(url, 0, bytes.length, `Upload-Checksum: sha1 ${sha1}\r\n`));
  conn.socket.write(bytes.subarray(0, 400));
  const answer = await readResponse(conn, TIMEOUT * 6);
  assert.equal(answer?.status, 408);
  assert.equal(answer?.headers['upload-offset'], '0');
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '0');
});

test('a creation-with-upload POST whose body stops is closed unanswered, and nothing of it is kept: its client never \
got the Location', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT });
  const bytes = patternBytes(200_000);
  const conn = await openRaw(s.endpoint);
  const { host } = new URL(s.endpoint);
  conn.socket.write(
    `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: ${bytes.length}\r\n` +
      `Upload-Metadata: ${metadata({ filename: 'post.bin' })}\r\nContent-Type: ` +
      `application/offset+octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`,
  );
  conn.socket.write(bytes.subarray(0, 50_000));
  await closedWithin(conn, TIMEOUT * 6, 'the stalled POST');
  assert.equal(conn.received().length, 0, 'no answer, so no Location');
  // Its removal follows the close: wait for it, not a moment.
  const stored = () => fs.readdirSync(s.config.storeDir).filter((n) => n.endsWith('.json'));
  for (const end = Date.now() + 5000; stored().length > 0 && Date.now() < end; ) await sleep(20);
  assert.deepEqual(stored(), [], "no upload left holding its owner's place and the space it was owed");
  // The client starts again, as tus-js-client does without a Location, and finishes.
  const again = await fetch(s.endpoint, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Length': String(bytes.length),
      'Content-Type': 'application/offset+octet-stream',
    },
    body: new Uint8Array(bytes),
  });
  assert.equal(again.status, 201, await again.text());
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.md5, md5(bytes));
});

test('the time the server takes to answer after the last byte is not limited (a slow pre-finish hook)', async (t) => {
  const slow: HookHandler = {
    name: 'slow',
    events: ['pre-finish'],
    async invokeHook() {
      await sleep(TIMEOUT * 4);
      return {};
    },
  };
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT }, { hooks: [slow] });
  const bytes = patternBytes(10_000);
  const url = await create(s.endpoint, bytes.length);
  const last = await patch(url, 0, bytes);
  assert.equal(last.status, 200, last.body);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
});

test('a client that stops reading answers is cut once nothing leaves for NETWORK_TIMEOUT', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT });
  // A download larger than any socket buffers between the two ends.
  const size = 48 * 1024 * 1024;
  const url = await create(s.endpoint, size);
  assert.equal((await patch(url, 0, Buffer.alloc(size, 7))).status, 200);
  const before = openDescriptors();
  const conn = await openRaw(url);
  conn.socket.pause();
  conn.socket.write(`GET ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n\r\n`);
  await sleep(TIMEOUT * 4);
  // Reading again: what the kernel held arrives, then the end (the server let go meanwhile).
  conn.socket.resume();
  await closedWithin(conn, TIMEOUT * 8, 'the connection that read nothing for a while');
  assert.ok(conn.received().length < size, `${conn.received().length} of ${size} bytes arrived before the cut`);
  await sleep(50);
  assert.ok(openDescriptors() <= before, 'its descriptors (socket, file) are released');
  assert.ok(
    s.logs.some((l) => l.includes('took no response byte')),
    'the cut is logged',
  );
});

test('exhaustion: stalled PATCHes, silent connections, slow headers and idle keep-alives are all closed after \
NETWORK_TIMEOUT; others are served', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: TIMEOUT });
  const N = 40;
  const urls = await Promise.all(Array.from({ length: N }, () => create(s.endpoint, 1000)));
  const baseline = openDescriptors();
  const conns: Array<{ conn: RawConnection; kind: string }> = [];
  for (let i = 0; i < N; i++) {
    const patching = await openRaw(urls[i]!);
    patching.socket.write(patchHead(urls[i]!, 0, 1000) + 'x'.repeat(10));
    const silent = await openRaw(s.url);
    const slowHeaders = await openRaw(s.url);
    slowHeaders.socket.write(
      `HEAD ${new URL(urls[i]!).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n`,
    );
    const keepAlive = await openRaw(s.url);
    keepAlive.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    conns.push(
      { conn: patching, kind: 'stalled PATCH' },
      { conn: silent, kind: 'silent' },
      { conn: slowHeaders, kind: 'slow headers' },
      { conn: keepAlive, kind: 'idle keep-alive' },
    );
  }
  // A header trickled one byte at a time keeps bytes moving; the headers still must end in time.
  const trickle = await openRaw(s.url);
  trickle.socket.write('GET /health HTTP/1.1\r\nX-Slow: ');
  const dribble = setInterval(() => trickle.socket.writable && trickle.socket.write('a'), TIMEOUT / 10);
  conns.push({ conn: trickle, kind: 'trickled headers' });
  await sleep(50);
  const peak = openDescriptors();

  const started = Date.now();
  const slowest: Record<string, number> = {};
  await Promise.all(
    conns.map(async ({ conn, kind }) => {
      await closedWithin(conn, TIMEOUT * 8, kind);
      slowest[kind] = Math.max(slowest[kind] ?? 0, Date.now() - started);
    }),
  );
  const allClosedMs = Date.now() - started;
  clearInterval(dribble);
  await sleep(100);
  const after = openDescriptors();
  t.diagnostic(
    `${conns.length} idle connections; descriptors: ${baseline} before, ${peak} while open, ${after} after; all ` +
      `closed ${allClosedMs} ms after opening (timeout ${TIMEOUT} ms; slowest by kind: ${JSON.stringify(slowest)})`,
  );
  assert.ok(after <= baseline + 2, `descriptors back to the baseline: ${after} vs ${baseline}`);

  // Every stalled PATCH had its 408 and let go of its upload's lock.
  for (const { conn, kind } of conns.filter((c) => c.kind === 'stalled PATCH'))
    assert.match(conn.received().toString('latin1'), /^HTTP\/1\.1 408 /, kind);
  const heads = await Promise.all(urls.map((u) => tus('HEAD', u)));
  assert.deepEqual(new Set(heads.map((h) => `${h.status} ${h.headers['upload-offset']}`)), new Set(['200 10']));
  // A normal client is served.
  const bytes = patternBytes(5000);
  const url = await create(s.endpoint, bytes.length);
  const done = await patch(url, 0, bytes);
  assert.equal(done.status, 200);
  assert.equal(JSON.parse(done.body).md5, md5(bytes));
});

test('the completion service on its own port cuts a form that stops arriving after NETWORK_TIMEOUT', async (t) => {
  const service = await startCompletionServer(
    configFor({
      dataDir: tmpDir(t),
      completionPort: 0,
      completionSecret: 'test-secret-0123456789',
      networkTimeoutMs: TIMEOUT,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const conn = await openRaw(service.url);
  const { host } = new URL(service.url);
  conn.socket.write(
    `POST /complete/ HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ` +
      'application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nfile1.name=a',
  );
  await closedWithin(conn, TIMEOUT * 4, 'the stalled form');
});
