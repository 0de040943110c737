// The nginx upload module's resumable mode on POST /upload: raw segments with Session-ID and X-Content-Range.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { startCaptureApp, storeFiles } from './helpers/multipart.ts';
import { openRaw, readResponse } from './helpers/raw-http.ts';
import { sendSegment } from './helpers/resumable.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';

const SIZE = 300_000;
const bytes = patternBytes(SIZE, 7);

async function segment(
  url: string,
  session: string,
  a: number,
  b: number,
  extra: Record<string, string> = {},
  body = bytes.subarray(a, b + 1),
) {
  const r = await fetch(`${url}/upload`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': 'attachment; filename="big.TXT"',
      'X-Content-Range': `bytes ${a}-${b}/${SIZE}`,
      'Session-ID': session,
      ...extra,
    },
    body: new Uint8Array(body),
  });
  return { status: r.status, range: r.headers.get('range'), body: await r.text() };
}

test('in order: 201 with the ranges so far for each segment but \
the last; the last completes and answers as the app', async (t) => {
  const s = await startTestServer(t);
  let r = await segment(s.url, '1111215056', 0, 99_999);
  assert.equal(r.status, 201);
  assert.equal(r.range, '0-99999/300000');
  assert.equal(r.body.trim(), '0-99999/300000');
  r = await segment(s.url, '1111215056', 100_000, 199_999);
  assert.equal(r.status, 201);
  assert.equal(r.body.trim(), '0-199999/300000');
  r = await segment(s.url, '1111215056', 200_000, SIZE - 1);
  assert.equal(r.status, 200, r.body);
  const answer = JSON.parse(r.body);
  assert.equal(answer.message, 'Upload Complete');
  assert.equal(answer.md5, md5(bytes));
  assert.equal(answer.name, 'big.TXT');
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.size, SIZE);
});

test("out of order and repeated segments: ranges merge, \
repeats change nothing, the md5 is the whole file's", async (t) => {
  const s = await startTestServer(t, { digests: ['sha1'] });
  const session = 'ooo-1';
  let r = await segment(s.url, session, 200_000, SIZE - 1);
  assert.equal(r.body.trim(), '200000-299999/300000');
  r = await segment(s.url, session, 50_000, 99_999);
  assert.equal(r.body.trim(), '50000-99999,200000-299999/300000');
  // A repeat of a received segment: answered with the ranges as they are.
  r = await segment(s.url, session, 50_000, 99_999);
  assert.equal(r.status, 201);
  assert.equal(r.body.trim(), '50000-99999,200000-299999/300000');
  r = await segment(s.url, session, 0, 49_999);
  assert.equal(r.body.trim(), '0-99999,200000-299999/300000');
  // Overlapping what the front has already: the new part is taken.
  r = await segment(s.url, session, 90_000, 149_999);
  assert.equal(r.body.trim(), '0-149999,200000-299999/300000');
  r = await segment(s.url, session, 150_000, 199_999);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).md5, md5(bytes));
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.md5, md5(bytes));
  // After completion the session is gone: the same id starts anew.
  r = await segment(s.url, session, 0, 9);
  assert.equal(r.status, 201);
  assert.equal(r.body.trim(), '0-9/300000');
});

test('bad segments: missing headers 400, a range past the total \
or not matching the body 416, another total 416', async (t) => {
  const s = await startTestServer(t);
  let r = await segment(s.url, 'x', 0, 9, { 'Session-ID': '' });
  assert.equal(r.status, 400);
  assert.match(r.body, /ERR_RESUMABLE_HEADERS/);
  r = await segment(s.url, 'x', 0, 9, { 'Content-Disposition': 'inline' });
  assert.equal(r.status, 400);
  r = await segment(s.url, 'x', 0, 9, { 'X-Content-Range': 'bytes 0-9/5' });
  assert.equal(r.status, 416);
  r = await segment(s.url, 'x', 0, 9, {}, Buffer.alloc(5));
  assert.equal(r.status, 416);
  r = await segment(s.url, 'x', 0, 9);
  assert.equal(r.status, 201);
  r = await segment(s.url, 'x', 10, 19, { 'X-Content-Range': 'bytes 10-19/999999' });
  assert.equal(r.status, 416);
  // MAX_SIZE: the total is the file's size.
  const small = await startTestServer(t, { maxSize: 1000 });
  r = await segment(small.url, 'y', 0, 9);
  assert.equal(r.status, 413);
});

test('a chunked segment longer than its range is answered 416 (at the front and further on), not left without an \
answer; the session goes on', async (t) => {
  const s = await startTestServer(t);
  /** A segment whose chunked body carries `extra` bytes past its range. */
  const tooLong = async (a: number, b: number, extra: number) => {
    const conn = await openRaw(s.url);
    t.after(() => conn.socket.destroy());
    const body = Buffer.concat([bytes.subarray(a, b + 1), Buffer.alloc(extra, 0x55)]);
    conn.socket.write(
      'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: ' +
        'attachment; filename="big.TXT"\r\n' +
        `X-Content-Range: bytes ${a}-${b}/${SIZE}\r\nSession-ID: long\r\nTransfer-Encoding: ` +
        `chunked\r\n\r\n${body.length.toString(16)}\r\n`,
    );
    conn.socket.write(body);
    conn.socket.write('\r\n0\r\n\r\n');
    return readResponse(conn, 10_000);
  };
  for (const [a, b] of [
    [0, 99_999],
    [200_000, 249_999],
  ] as const) {
    const answer = await tooLong(a, b, 1000);
    assert.equal(answer?.status, 416, answer?.body.toString());
    assert.match(answer!.body.toString(), /ERR_RESUMABLE_RANGE/);
  }
  for (const [a, b] of [
    [0, 99_999],
    [100_000, 199_999],
    [200_000, SIZE - 1],
  ])
    await segment(s.url, 'long', a, b);
  const [record] = await recordsWhenPresent(s.url);
  assert.equal(record!.md5, md5(bytes));
});

test('a segment whose bytes complete the file completes the \
session, even when its chunked body goes on past its range', async (t) => {
  const s = await startTestServer(t);
  assert.equal((await segment(s.url, 'past', 100_000, SIZE - 1)).status, 201);
  const conn = await openRaw(s.url);
  t.after(() => conn.socket.destroy());
  // The range in one chunk of the body, then a chunk past it.
  conn.socket.write(
    'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: ' +
      'attachment; filename="big.TXT"\r\n' +
      `X-Content-Range: bytes 0-99999/${SIZE}\r\nSession-ID: past\r\nTransfer-Encoding: ` +
      `chunked\r\n\r\n${(100_000).toString(16)}\r\n`,
  );
  conn.socket.write(bytes.subarray(0, 100_000));
  conn.socket.write(`\r\n${(1000).toString(16)}\r\n${'U'.repeat(1000)}\r\n0\r\n\r\n`);
  const answer = await readResponse(conn, 10_000);
  assert.equal(answer?.status, 200, answer?.body.toString());
  const [record] = await recordsWhenPresent(s.url);
  assert.equal(record!.md5, md5(bytes));
});

test('a session belongs to its owner: another caller with \
the same Session-ID has a session of their own', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  assert.equal((await segment(s.url, 'shared', 0, 99_999)).status, 401);
  const ann = bearer(tokenFor('ann', 'upload'));
  const bob = bearer(tokenFor('bob', 'upload'));
  assert.equal((await segment(s.url, 'shared', 0, 99_999, ann)).body.trim(), '0-99999/300000');
  const r = await segment(s.url, 'shared', 100_000, SIZE - 1, bob);
  assert.equal(r.status, 201);
  assert.equal(r.body.trim(), '100000-299999/300000');
});

test('the last segment relays a rejecting app, and the file is removed', async (t) => {
  const app = await startCaptureApp(t, 409, { error: 'duplicate' });
  const s = await startTestServer(t, { completionUrl: app.url });
  await segment(s.url, 'rej', 0, 149_999);
  const r = await segment(s.url, 'rej', 150_000, SIZE - 1);
  assert.equal(r.status, 409);
  assert.deepEqual(JSON.parse(r.body), { error: 'duplicate' });
  assert.equal(app.forms[0]!.params.get('file1.name'), 'big.TXT');
  assert.equal(app.forms[0]!.params.get('file1.md5'), md5(bytes));
  assert.deepEqual(storeFiles(s.config.storeDir), []);
});

test('open sessions are capped (RESUMABLE_SESSIONS_MAX): made-up Session-IDs past it get 503 with Retry-After; \
finishing one makes room', async (t) => {
  const s = await startTestServer(t, { resumableSessionsMax: 3 });
  // Three anonymous callers (client addresses), one session each: a tenth of 3 is one.
  const from = (n: number) => ({ bytes, filename: 'x.bin', localAddress: `127.0.0.${n}` });
  for (const n of [1, 2, 3])
    assert.equal((await sendSegment(s.url, `100000000${n}`, [0, 99], from(n))).status, 201, `caller ${n}`);
  const refused = await sendSegment(s.url, '1000000004', [0, 99], from(4));
  assert.equal(refused.status, 503);
  assert.match(refused.body, /ERR_RESUMABLE_SESSIONS_FULL/);
  assert.equal(refused.headers['retry-after'], '60');
  // An open session still takes its segments; once it completes, a new session is admitted.
  assert.equal((await sendSegment(s.url, '1000000001', [100, SIZE - 1], from(1))).status, 200);
  assert.equal((await sendSegment(s.url, '1000000004', [0, 99], from(4))).status, 201);
});

test('anonymous callers: one client address holds at most a tenth \
of RESUMABLE_SESSIONS_MAX, others still get sessions', async (t) => {
  const s = await startTestServer(t, { resumableSessionsMax: 20 });
  const one = { bytes, localAddress: '127.0.0.1' };
  const other = { bytes, localAddress: '127.0.0.2' };
  for (let i = 0; i < 2; i++) assert.equal((await sendSegment(s.url, `400000000${i}`, [0, 99], one)).status, 201);
  const third = await sendSegment(s.url, '4000000009', [0, 99], one);
  assert.equal(third.status, 503, third.body);
  assert.match(third.body, /ERR_RESUMABLE_SESSIONS_FULL/);
  assert.equal(
    (await sendSegment(s.url, '5000000001', [0, 99], other)).status,
    201,
    'another address still gets a session',
  );
  assert.equal(
    (await sendSegment(s.url, '4000000000', [100, 199], one)).status,
    201,
    'an open session of the first caller goes on',
  );
});

test("anonymous callers: a session is its client address's; another address sending the same Session-ID first has a \
session of its own, and its bytes are not in the first caller's file", async (t) => {
  const s = await startTestServer(t);
  const owner = { bytes, localAddress: '127.0.0.1' };
  const guesser = { bytes: Buffer.alloc(SIZE, 0x55), localAddress: '127.0.0.2' };
  const planted = await sendSegment(s.url, '4242', [0, 99_999], guesser);
  assert.equal(planted.status, 201);
  assert.equal(
    (await sendSegment(s.url, '4242', [200_000, SIZE - 1], owner)).range,
    `200000-${SIZE - 1}/${SIZE}`,
    "the guesser's range is not the owner's",
  );
  assert.equal((await sendSegment(s.url, '4242', [0, 99_999], owner)).status, 201);
  const done = await sendSegment(s.url, '4242', [100_000, 199_999], owner);
  assert.equal(done.status, 200, done.body);
  assert.equal(JSON.parse(done.body).md5, md5(bytes));
});

test('with authentication one caller holds at most a tenth of RESUMABLE_SESSIONS_MAX: one token cannot fill it for \
everyone', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET, resumableSessionsMax: 20 });
  const ann = bearer(tokenFor('ann', 'upload'));
  const bob = bearer(tokenFor('bob', 'upload'));
  for (let i = 0; i < 2; i++) assert.equal((await segment(s.url, `200000000${i}`, 0, 99, ann)).status, 201);
  const third = await segment(s.url, '2000000009', 0, 99, ann);
  assert.equal(third.status, 503);
  assert.match(third.body, /ERR_RESUMABLE_SESSIONS_FULL/);
  assert.equal((await segment(s.url, '3000000001', 0, 99, bob)).status, 201, 'another caller still gets a session');
  assert.equal(
    (await segment(s.url, '2000000000', 100, 199, ann)).status,
    201,
    'an open session of the first caller goes on',
  );
});

/** The first log line matching `pattern`, once there is one. */
async function logLine(logs: string[], pattern: RegExp): Promise<string> {
  const until = Date.now() + 10_000;
  for (;;) {
    const line = logs.find((l) => pattern.test(l));
    if (line) return line;
    assert.ok(Date.now() < until, `no log line matching ${pattern}:\n${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const segmentHead = (session: string, [a, b]: [number, number]) =>
  'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: ' +
  `attachment; filename="cut.bin"\r\nX-Content-Range: bytes ${a}-${b}/${SIZE}\r\nSession-ID: ` +
  `${session}\r\nContent-Length: ${b - a + 1}\r\n\r\n`;

test('a segment the client drops (closed before its end): one info line with its cause and what was kept, not an \
error; the session goes on', async (t) => {
  const s = await startTestServer(t);
  const dropped = () => s.logs.filter((l) => /^dropped POST \/upload/.test(l));
  const closed = await openRaw(s.url);
  closed.socket.write(segmentHead('drop-1', [0, 199_999]));
  closed.socket.end(bytes.subarray(0, 80_000));
  const line = await logLine(s.logs, /^dropped POST \/upload/);
  assert.match(
    line,
    /the client closed the connection at byte \d+ of the body \(Content-Length 200000\); \d+ bytes of it kept/,
  );
  assert.doesNotMatch(line, /level=(error|fatal)/);
  // The bytes kept are in the session: the rest completes the file, with the right md5.
  const kept = Number(/; (\d+) bytes of it kept/.exec(line)![1]);
  const r = await sendSegment(s.url, 'drop-1', [kept, SIZE - 1], { bytes });
  assert.equal(r.status, 200, `${r.status} ${r.body}`);
  assert.equal(JSON.parse(r.body).md5, md5(bytes));
  assert.equal(dropped().length, 1, 'one line for the dropped segment');
  for (const l of s.logs) {
    assert.doesNotMatch(l, /\[object Object\]/);
    assert.doesNotMatch(l, /ERR_INTERNAL/);
  }
});

test('a segment whose body stops past NETWORK_TIMEOUT is answered 408 with the ranges kept (Range and the message) and \
closed; the session resumes to the right md5', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: 500 });
  // A first segment further on, so the ranges answered are more than the cut segment's own.
  assert.equal((await sendSegment(s.url, 'quiet-1', [250_000, SIZE - 1], { bytes })).status, 201);
  const quiet = await openRaw(s.url);
  quiet.socket.write(segmentHead('quiet-1', [0, 199_999]));
  quiet.socket.write(bytes.subarray(0, 80_000));
  const answer = await readResponse(quiet, 10_000);
  assert.ok(answer, 'answered before the connection closed');
  assert.equal(answer.status, 408, answer.body.toString());
  assert.equal(answer.headers.connection, 'close');
  const ranges = `0-79999,250000-${SIZE - 1}/${SIZE}`;
  assert.equal(answer.headers.range, ranges, 'the bytes that reached the front are kept');
  const body = JSON.parse(answer.body.toString());
  assert.equal(body.error.code, 'ERR_BODY_TIMEOUT');
  assert.ok(body.message.endsWith(ranges), body.message);
  await quiet.closed;
  assert.ok(!s.logs.some((l) => /^dropped POST \/upload/.test(l)), 'answered, not dropped');
  // The rest, as the ranges say: the file completes with the right md5.
  assert.equal((await sendSegment(s.url, 'quiet-1', [80_000, 199_999], { bytes })).status, 201);
  const last = await sendSegment(s.url, 'quiet-1', [200_000, 249_999], { bytes });
  assert.equal(last.status, 200, `${last.status} ${last.body}`);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
});

test('the full-length file of an unfinished session expires like any unfinished upload (EXPIRE_AFTER); a finished one \
stays; the Session-ID then starts anew', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 1 }, { expirySweepMs: 3_600_000 });
  const dir = s.config.storeDir;
  const uploads = () =>
    storeFiles(dir)
      .filter((n) => !n.includes('.'))
      .sort();
  assert.equal((await segment(s.url, 'finished', 0, SIZE - 1)).status, 200);
  const [finished] = uploads();
  // Only the last segment: full length, holes before.
  assert.equal((await segment(s.url, 'open', 200_000, SIZE - 1)).status, 201);
  const open = uploads().find((id) => id !== finished)!;
  assert.equal(fs.statSync(path.join(dir, open)).size, SIZE);
  // Past the period (1 ms) whatever the load: it only grows more expired.
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await s.store.deleteExpired(), 1);
  assert.deepEqual(uploads(), [finished]);
  const again = await segment(s.url, 'open', 0, 99);
  assert.equal(again.status, 201);
  assert.equal(again.body.trim(), '0-99/300000', "a new session: the expired one's ranges are gone");
});

test('an upload still written in segments is no tus upload: HEAD, GET, PATCH and DELETE of its id are 404 until its \
segments cover it', async (t) => {
  const s = await startTestServer(t);
  const session = 'holes-1';
  // The last segment first: the file is full length at once, with a hole where bytes never came.
  let r = await segment(s.url, session, 200_000, SIZE - 1);
  assert.equal(r.status, 201);
  const storeDir = path.join(s.config.dataDir, 'uploads');
  const [info] = storeFiles(storeDir).filter((n) => n.endsWith('.json'));
  const id = info!.slice(0, -'.json'.length);
  assert.equal(fs.statSync(path.join(storeDir, id)).size, SIZE, 'the file is full length');
  const tus = { 'Tus-Resumable': '1.0.0' };
  const head = await fetch(`${s.endpoint}${id}`, { method: 'HEAD', headers: tus });
  assert.equal(head.status, 404, 'HEAD does not report bytes never sent');
  const get = await fetch(`${s.endpoint}${id}`, { headers: tus });
  assert.equal(get.status, 404, 'GET does not serve the holes');
  assert.match(await get.text(), /^ERR_UPLOAD_NOT_FOUND/);
  const patch = await fetch(`${s.endpoint}${id}`, {
    method: 'PATCH',
    headers: { ...tus, 'Upload-Offset': String(SIZE), 'Content-Type': 'application/offset+octet-stream' },
    body: '',
  });
  assert.equal(patch.status, 404, 'PATCH cannot finish it behind its session');
  const del = await fetch(`${s.endpoint}${id}`, { method: 'DELETE', headers: tus });
  assert.equal(del.status, 404, 'DELETE cannot remove it');
  // The session itself goes on and finishes; then the upload is a finished upload like any other.
  r = await segment(s.url, session, 0, 199_999);
  assert.equal(r.status, 200, r.body);
  const done = await fetch(`${s.endpoint}${id}`, { headers: tus });
  assert.equal(done.status, 200);
  assert.equal(md5(Buffer.from(await done.arrayBuffer())), md5(bytes));
});
