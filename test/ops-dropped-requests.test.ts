// Requests the client drops in the middle of their body (raw sockets closing or resetting, chunked
// bodies cut inside a chunk, checksummed bodies, creations with a body, tus-js-client's abort): each
// is one info line saying where its body stopped and what was kept, counted as a dropped request;
// none is an error line, a 500, ERR_INTERNAL or a "malformed request", and no line reads [object Object].
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import * as tusClient from 'tus-js-client';
import { patternBytes } from './helpers/files.ts';
import { delta, scrape, series } from './helpers/metrics.ts';
import { openRaw } from './helpers/raw-http.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { create, tus } from './helpers/tus.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** How the client goes: a FIN after the bytes sent (they all arrive first), or a reset. */
type Close = 'end' | 'reset';

interface Drop {
  /** The body bytes the client sent before it went. */
  sent: number;
  close: Close;
  /** A checksummed body keeps nothing of a cut body. */
  checksummed?: boolean;
}

/** The request head, `sent` body bytes of it, then the connection goes. */
async function cutRequest(url: string, head: string, body: Buffer, drop: Drop): Promise<void> {
  const conn = await openRaw(url);
  if (drop.close === 'reset') {
    // A reset may discard what is still in flight: wait until the server has taken the request
    // (node answers Expect: 100-continue when the request reaches its handler), then cut.
    conn.socket.write(`${head}Expect: 100-continue\r\n\r\n`);
    await new Promise<void>((resolve) => {
      const check = () => (conn.received().includes('100 Continue') ? resolve() : conn.socket.once('data', check));
      check();
    });
    conn.socket.write(body.subarray(0, drop.sent));
    await new Promise<void>((resolve) => conn.socket.write('', () => resolve()));
    conn.socket.resetAndDestroy();
  } else {
    conn.socket.write(`${head}\r\n`);
    conn.socket.write(body.subarray(0, drop.sent));
    conn.socket.end();
  }
  await conn.closed;
}

function patchHead(url: string, length: number, extra = ''): string {
  const u = new URL(url);
  return (
    `PATCH ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nTus-Resumable: 1.0.0\r\nContent-Type: ` +
    'application/offset+octet-stream\r\nUpload-Offset: ' +
    `0\r\n${extra}${length >= 0 ? `Content-Length: ${length}\r\n` : 'Transfer-Encoding: chunked\r\n'}`
  );
}

/** The server's lines about dropped requests (the log sink gives one text line per event). */
const dropLines = (s: TestServer) => s.logs.filter((l) => l.includes('event=request.dropped'));

/** Waits for the event (the count of drop lines reaching `count`); the deadline only names a failure. */
async function dropLinesReach(s: TestServer, count: number): Promise<string[]> {
  const until = Date.now() + 60_000;
  while (dropLines(s).length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return dropLines(s);
}

const field = (line: string, name: string) => new RegExp(` ${name}=(\\S+)`).exec(line)?.[1];

test('requests the client drops mid-body: one info line each with where the body stopped and what was kept, their own \
count, no error line, no [object Object], no ERR_INTERNAL', async (t) => {
  const s = await startTestServer(t);
  const metricsUrl = `${s.url}/metrics`;
  const before = (await scrape(metricsUrl)).metrics;
  const size = 4 * MiB;
  const body = patternBytes(size, 5);
  const sha1 = crypto.createHash('sha1').update(body).digest('base64');

  /** The upload each drop went to, and what its line must say. */
  const expected: Array<{ id: string; drop: Drop }> = [];
  const drops: Drop[] = [];
  for (let i = 0; i < 24; i++)
    drops.push({
      sent: [0, 1, 100, 64 * KiB, 300 * KiB + 7, 2 * MiB][i % 6]!,
      close: i % 2 ? 'reset' : 'end',
      checksummed: i % 8 === 3,
    });
  // PATCHes with Content-Length, one at a time so each line is matched to its upload.
  for (const drop of drops) {
    const url = await create(s.endpoint, size);
    await cutRequest(
      url,
      patchHead(url, size, drop.checksummed ? `Upload-Checksum: sha1 ${sha1}\r\n` : ''),
      body,
      drop,
    );
    expected.push({ id: url.split('/').pop()!, drop });
  }
  // Chunked PATCHes cut inside a chunk.
  for (const close of ['end', 'reset'] as const) {
    const url = await create(s.endpoint, size);
    const chunked = Buffer.concat([
      Buffer.from(`10000\r\n`),
      body.subarray(0, 0x10000),
      Buffer.from('\r\n10000\r\n'),
      body.subarray(0, 1000),
    ]);
    await cutRequest(url, patchHead(url, -1), chunked, { sent: chunked.length, close });
    expected.push({ id: url.split('/').pop()!, drop: { sent: 0x10000 + 1000, close } });
  }
  // Creations with a body (creation-with-upload), cut.
  const creations = 4;
  for (let i = 0; i < creations; i++) {
    const u = new URL(s.endpoint);
    const head =
      `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: ` +
      `${size}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${size}\r\n`;
    await cutRequest(s.endpoint, head, body, { sent: 200 * KiB, close: i % 2 ? 'reset' : 'end' });
  }
  // tus-js-client's abort while a PATCH is sending. The body is far larger than what the sockets hold:
  // on a loaded machine 31 of 32 MiB went out between the progress event and the abort.
  const aborted = 3;
  for (let i = 0; i < aborted; i++) {
    const upload = await new Promise<tusClient.Upload>((resolve, reject) => {
      const u: tusClient.Upload = new tusClient.Upload(patternBytes(256 * MiB, 9 + i), {
        endpoint: s.endpoint,
        chunkSize: 256 * MiB,
        retryDelays: [],
        onProgress: (sent) => {
          if (sent >= MiB) resolve(u);
        },
        onError: reject,
        onSuccess: () => reject(new Error('the upload finished before it could be aborted')),
      });
      u.start();
    });
    await upload.abort();
  }

  const total = expected.length + creations + aborted;
  const lines = await dropLinesReach(s, total);
  assert.equal(lines.length, total, `one line per dropped request:\n${lines.join('\n')}`);
  // Each line is true: its upload's offset is what it says was kept. (A connection's end can overtake
  // bytes that arrived but were not yet read: a line says what the server took, never more than was sent.)
  for (const { id, drop } of expected) {
    const line = lines.find((l) => l.includes(`upload_id=${id}`));
    assert.ok(line, `a line for upload ${id}`);
    assert.match(line, /^dropped PATCH \/files\/[0-9a-f]+: the client closed the connection at byte \d+ of the body/);
    assert.equal(field(line, 'cause'), 'client_closed');
    const received = Number(field(line, 'received'));
    const kept = Number(field(line, 'kept'));
    assert.ok(received <= drop.sent, `${received} bytes received of ${drop.sent} sent`);
    assert.equal(kept, drop.checksummed ? 0 : received, line);
    const head = await tus('HEAD', `${s.endpoint}${id}`);
    assert.equal(Number(head.headers['upload-offset']), kept, `the offset of ${id} is what its line says was kept`);
  }
  const creationLines = lines.filter((l) => l.startsWith('dropped POST'));
  assert.equal(creationLines.length, creations, lines.join('\n'));
  // A cut creation's client never got its Location: nobody can resume it, so nothing of it is kept
  // (it would hold a place in its owner's count and the space it was owed until it expired).
  for (const line of creationLines) {
    const id = field(line, 'upload_id')!;
    assert.equal(Number(field(line, 'kept')), 0, line);
    const head = await tus('HEAD', `${s.endpoint}${id}`);
    assert.equal(head.status, 404, line);
  }
  for (const line of lines) assert.ok(!/level=(error|warn)/.test(line), line);

  const after = (await scrape(metricsUrl)).metrics;
  assert.equal(delta(before, after, series('tuspass_requests_dropped_total', { cause: 'client_closed' })), total);
  assert.equal(delta(before, after, series('tusd_errors_total', { status: '500', code: 'ERR_INTERNAL' })), 0);
  assert.equal(delta(before, after, series('tusd_errors_total', { status: '400', code: 'ERR_REQUEST_MALFORMED' })), 0);
  // The bytes kept are bytes received.
  // (A cut creation's bytes were written, and counted, before its upload was removed.)
  const keptTotal = lines.reduce(
    (sum, l) => sum + Number(field(l, l.startsWith('dropped POST') ? 'received' : 'kept') ?? 0),
    0,
  );
  assert.equal(delta(before, after, 'tusd_bytes_received'), keptTotal);
  assert.deepEqual(
    s.logs.filter((l) => l.includes('[object Object]')),
    [],
  );
  assert.deepEqual(
    s.logs.filter((l) => /level=error/.test(l)),
    [],
  );
  // Nothing more came after (no second line for any of them).
  assert.equal(dropLines(s).length, total);
});

test('a creation-with-upload cut after every byte its Upload-Length asked for is complete: kept and announced, not \
removed', async (t) => {
  const s = await startTestServer(t);
  const size = 100_000;
  const body = patternBytes(size * 2, 5);
  const u = new URL(s.endpoint);
  // A chunked body that stops right after the upload's length, before its last chunk: the upload is whole.
  const head =
    `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: ` +
    `${size}\r\nContent-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n`;
  const chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), body.subarray(0, size), Buffer.from('\r\n')]);
  await cutRequest(s.endpoint, head, chunk, { sent: chunk.length, close: 'end' });
  const records = await (async () => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
      const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<{
        upload_id: string;
        md5: string;
        size: number;
      }>;
      if (list.length > 0) return list;
    }
    return [];
  })();
  assert.equal(records.length, 1, 'announced once');
  assert.equal(records[0]!.size, size);
  assert.equal(records[0]!.md5, crypto.createHash('md5').update(body.subarray(0, size)).digest('hex'));
  const stored = await fetch(`${s.endpoint}${records[0]!.upload_id}`);
  assert.equal(stored.status, 200, 'its file is still there for the record');
});

test('a PATCH cut right after the last byte its upload was owed completes it: announced at once, its request noted \
as dropped with every byte kept', async (t) => {
  const s = await startTestServer(t);
  const size = 100_000;
  const body = patternBytes(size, 6);
  const url = await create(s.endpoint, size);
  // A chunked body that stops after the upload's last byte, before its last chunk: the upload is whole.
  const chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), body, Buffer.from('\r\n')]);
  await cutRequest(url, patchHead(url, -1), chunk, { sent: chunk.length, close: 'end' });
  const [line] = await dropLinesReach(s, 1);
  assert.match(line!, /^dropped PATCH /);
  assert.equal(Number(field(line!, 'kept')), size, line);
  // Announced without a restart or another request: the completion's record is there.
  let records: Array<{ upload_id: string; md5: string; size: number }> = [];
  for (const end = Date.now() + 5000; records.length === 0 && Date.now() < end; ) {
    records = (await (await fetch(`${s.url}/api/uploads`)).json()) as typeof records;
    if (records.length === 0) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(records.length, 1, 'announced once');
  assert.equal(records[0]!.upload_id, url.split('/').pop());
  assert.equal(records[0]!.md5, crypto.createHash('md5').update(body).digest('hex'));
  assert.deepEqual(await s.store.unannounced(), []);
});
