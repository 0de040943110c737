// The checksum extension in raw HTTP: one test per MUST, and a mismatch leaves nothing behind.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import { crc32, md5, patternBytes } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { startCaptureApp, storeFiles } from './helpers/multipart.ts';
import { create, patch, tus } from './helpers/tus.ts';
import { exchange } from './helpers/draft-http.ts';

const b64 = (algorithm: string, body: Buffer) => crypto.createHash(algorithm).update(body).digest('base64');
const crc32b64 = (body: Buffer) => Buffer.from(crc32(body), 'hex').toString('base64');

test('OPTIONS lists checksum in Tus-Extension and the algorithms in Tus-Checksum-Algorithm', async (t) => {
  const s = await startTestServer(t);
  const res = await tus('OPTIONS', s.endpoint);
  assert.ok(res.headers['tus-extension']!.split(',').includes('checksum'));
  // "The Server MUST support at least the SHA1 checksum algorithm identified by sha1."
  assert.deepEqual(res.headers['tus-checksum-algorithm']!.split(',').sort(), [
    'crc32',
    'md5',
    'sha1',
    'sha256',
    'sha512',
  ]);
});

test('a body matching its checksum is kept, for every advertised algorithm', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(50_000);
  const url = await create(s.endpoint, bytes.length * 5);
  let offset = 0;
  for (const [algorithm, value] of [
    ['sha1', b64('sha1', bytes)],
    ['md5', b64('md5', bytes)],
    ['sha256', b64('sha256', bytes)],
    ['sha512', b64('sha512', bytes)],
    ['crc32', crc32b64(bytes)],
  ] as const) {
    const res = await patch(url, offset, bytes, { 'Upload-Checksum': `${algorithm} ${value}` });
    assert.ok(res.status === 204 || res.status === 200, `${algorithm}: ${res.status} ${res.body}`);
    offset += bytes.length;
    assert.equal(res.headers['upload-offset'], String(offset));
  }
});

test('a mismatch gets 460 and nothing of the body is kept: offset, bytes and running md5 as before', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(300_000, 5);
  const url = await create(s.endpoint, bytes.length);
  const id = url.split('/').pop()!;
  assert.equal((await patch(url, 0, bytes.subarray(0, 100_000))).status, 204);
  const before = fs.readFileSync(s.store.filePath(id));
  const state = fs.readFileSync(s.store.statePath(id));

  const middle = bytes.subarray(100_000, 200_000);
  const wrong = await patch(url, 100_000, middle, {
    'Upload-Checksum': `sha1 ${b64('sha1', Buffer.from('something else'))}`,
  });
  // "the Server MUST respond with the 460 Checksum Mismatch status code ... and MUST NOT append the chunk"
  assert.equal(wrong.status, 460);
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '100000');
  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), before);
  assert.deepEqual(fs.readFileSync(s.store.statePath(id)), state, 'digest state untouched');

  // The same chunk with the right checksum goes in, and the upload ends with the right md5.
  const right = await patch(url, 100_000, middle, { 'Upload-Checksum': `sha1 ${b64('sha1', middle)}` });
  assert.equal(right.status, 204);
  const last = await patch(url, 200_000, bytes.subarray(200_000), {
    'Upload-Checksum': `md5 ${b64('md5', bytes.subarray(200_000))}`,
  });
  assert.equal(last.status, 200);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
});

test('an unsupported algorithm or a malformed header gets 400 and nothing is written', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 10);
  // "If the hash cannot be calculated at the Server because the algorithm is not supported, the
  // Server MUST respond with the 400 Bad Request status."
  assert.equal((await patch(url, 0, 'abcde', { 'Upload-Checksum': 'whirlpool AAAA' })).status, 400);
  assert.equal((await patch(url, 0, 'abcde', { 'Upload-Checksum': 'sha1' })).status, 400);
  assert.equal((await patch(url, 0, 'abcde', { 'Upload-Checksum': 'sha1 not*base64' })).status, 400);
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '0');
});

test('a checksummed PATCH interrupted by a crash is undone at the next start', async (t) => {
  const dataDir = tmpDir(t);
  let s = await startTestServer(t, { dataDir });
  const url = await create(s.endpoint, 1000);
  const id = url.split('/').pop()!;
  await patch(url, 0, Buffer.alloc(400, 1));
  const port = Number(new URL(s.url).port);
  await s.close();
  // What a crash mid-way through a checksummed PATCH leaves: unverified bytes and the marker. Even
  // the whole rest: the upload must not count as complete.
  fs.appendFileSync(s.store.filePath(id), Buffer.alloc(600, 2));
  fs.writeFileSync(`${s.store.filePath(id)}.unverified`, '400');
  s = await startTestServer(t, { dataDir, port });
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '400');
  assert.equal(fs.statSync(s.store.filePath(id)).size, 400);
  assert.equal(fs.existsSync(`${s.store.filePath(id)}.unverified`), false);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as unknown[];
  assert.equal(list.length, 0, 'nothing announced for the cut-back upload');
});

test('while a checksummed PATCH runs, other requests on the upload do not cut its file', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(200_000, 8);
  const url = await create(s.endpoint, bytes.length);
  const id = url.split('/').pop()!;
  const body = bytes.subarray(0, 100_000);
  // A slow checksummed body: the marker is on disk while a GET and a refused final come in.
  const slow = new ReadableStream({
    async start(c) {
      for (let i = 0; i < body.length; i += 10_000) {
        c.enqueue(body.subarray(i, i + 10_000));
        await new Promise((r) => setTimeout(r, 30));
      }
      c.close();
    },
  });
  const sending = fetch(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Checksum': `sha1 ${b64('sha1', body)}`,
    },
    body: slow,
    duplex: 'half',
  } as RequestInit);
  await new Promise((r) => setTimeout(r, 120));
  await fetch(url, { headers: { 'Tus-Resumable': '1.0.0' } });
  await tus('POST', s.endpoint, { 'Upload-Concat': `final;${url}` });
  assert.equal((await sending).status, 204);
  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), body);
  const last = await patch(url, 100_000, bytes.subarray(100_000));
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
});

test('creation-with-upload is checked as a PATCH is: a mismatch is 460 and keeps the created upload at offset 0, \
nothing announced; a malformed header is 400 and creates nothing', async (t) => {
  const app = await startCaptureApp(t);
  const s = await startTestServer(t, { completionUrl: app.url });
  const bytes = patternBytes(100_000, 9);
  const withBody = (checksum: string) =>
    tus(
      'POST',
      s.endpoint,
      {
        'Upload-Length': String(bytes.length),
        'Content-Type': 'application/offset+octet-stream',
        'Upload-Checksum': checksum,
      },
      bytes,
    );

  const wrong = await withBody(`sha1 ${b64('sha1', Buffer.from('something else'))}`);
  // "the Server MUST respond with the 460 Checksum Mismatch status code ... and MUST NOT append the chunk"
  assert.equal(wrong.status, 460, wrong.body);
  assert.match(wrong.body, /^ERR_CHECKSUM_MISMATCH: /);
  // The creation stands, as tusd keeps it: empty, at offset 0, and its URL is in the answer.
  const url = new URL(wrong.headers.location!, s.endpoint).toString();
  const head = await tus('HEAD', url);
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], '0');
  assert.equal(fs.statSync(s.store.filePath(url.split('/').pop()!)).size, 0);

  // Malformed or of an unknown algorithm: 400 before anything is created.
  const before = storeFiles(s.config.storeDir);
  for (const header of ['sha1', 'sha1 not*base64', 'whirlpool AAAA']) {
    const bad = await withBody(header);
    assert.equal(bad.status, 400, `${header}: ${bad.body}`);
    assert.match(bad.body, /^ERR_CHECKSUM_HEADER: /);
  }
  assert.deepEqual(storeFiles(s.config.storeDir), before, 'nothing created');
  assert.equal(app.forms.length, 0, 'no form posted');
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), [], 'nothing in the catalog');

  // The kept upload takes the body with the right checksum; a right checksum at creation finishes in one request.
  const resumed = await patch(url, 0, bytes, { 'Upload-Checksum': `md5 ${b64('md5', bytes)}` });
  assert.ok(resumed.status < 300, resumed.body);
  const right = await withBody(`crc32 ${crc32b64(bytes)}`);
  assert.equal(right.status, 201, right.body);
  assert.equal(app.forms.length, 2);
  for (const form of app.forms) assert.ok([...form.params.values()].includes(md5(bytes)), form.params.toString());
});

test('a length declared with a body that failed its checksum is not kept: the upload stays of deferred length, never \
finished', async (t) => {
  const app = await startCaptureApp(t);
  const s = await startTestServer(t, { completionUrl: app.url });
  const wrongSha1 = `sha1 ${b64('sha1', Buffer.from('something else'))}`;
  const deferred = async () => {
    const res = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
    assert.equal(res.status, 201);
    return new URL(res.headers.location!, s.endpoint).toString();
  };
  // tus: the last PATCH of a deferred upload, declaring its length, refused by its checksum.
  const bytes = patternBytes(10_000, 3);
  const tusUrl = await deferred();
  const refused = await patch(tusUrl, 0, bytes, {
    'Upload-Length': String(bytes.length),
    'Upload-Checksum': wrongSha1,
  });
  assert.equal(refused.status, 460);
  const head = await tus('HEAD', tusUrl);
  assert.equal(head.headers['upload-offset'], '0');
  assert.equal(head.headers['upload-defer-length'], '1', 'the length the refused PATCH carried is not kept');
  assert.equal(head.headers['upload-length'], undefined);
  // An empty last PATCH whose checksum fails: had its length (0) been kept, the upload would be complete unannounced.
  const empty = await deferred();
  assert.equal(
    (await patch(empty, 0, Buffer.alloc(0), { 'Upload-Length': '0', 'Upload-Checksum': wrongSha1 })).status,
    460,
  );
  assert.equal((await tus('HEAD', empty)).headers['upload-defer-length'], '1');
  // The draft: an empty complete creation whose Content-Digest fails.
  const draft = await exchange('POST', s.endpoint, {
    'Upload-Draft-Interop-Version': 8,
    'Upload-Complete': '?1',
    'Content-Digest': `sha-256=:${b64('sha256', Buffer.from('x'))}:`,
  });
  assert.equal(draft.final.status, 460);
  assert.deepEqual(await s.store.unannounced(), [], 'no upload is complete on disk without having been announced');
  // The right body then declares the length and finishes the upload.
  const right = await patch(tusUrl, 0, bytes, {
    'Upload-Length': String(bytes.length),
    'Upload-Checksum': `md5 ${b64('md5', bytes)}`,
  });
  assert.equal(right.status, 200, right.body);
  assert.equal(app.forms.length, 1);
});

test('an empty creation (Upload-Length: 0) whose body fails its checksum is not kept: no finished upload nobody was \
told of', async (t) => {
  const app = await startCaptureApp(t);
  const s = await startTestServer(t, { completionUrl: app.url });
  const before = storeFiles(s.config.storeDir);
  const res = await tus(
    'POST',
    s.endpoint,
    {
      'Upload-Length': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Checksum': `sha1 ${b64('sha1', Buffer.from('x'))}`,
    },
    Buffer.alloc(0),
  );
  assert.equal(res.status, 460, res.body);
  assert.equal(res.headers.location, undefined, 'no upload to resume');
  assert.deepEqual(storeFiles(s.config.storeDir), before, 'nothing kept');
  assert.deepEqual(await s.store.unannounced(), []);
  assert.equal(app.forms.length, 0);
});
