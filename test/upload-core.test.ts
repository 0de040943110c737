// tus 1.0.0 core and creation in raw HTTP against a real server; bad input gets the right status and
// leaves what is stored untouched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';
import { create, metadata, patch, tus } from './helpers/tus.ts';

test('OPTIONS advertises the protocol version and extensions', async (t) => {
  const s = await startTestServer(t);
  const res = await tus('OPTIONS', s.endpoint);
  assert.equal(res.status, 204);
  assert.equal(res.headers['tus-version'], '1.0.0');
  assert.match(res.headers['tus-extension']!, /creation/);
  assert.match(res.headers['tus-extension']!, /termination/);
});

test('an upload in three PATCHes ends with the file, its md5 in the catalog and the answer relayed', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(300_000);
  const url = await create(s.endpoint, bytes.length, { filename: 'three.bin', description: 'a test' });
  let head = await tus('HEAD', url);
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], '0');
  assert.equal(head.headers['upload-length'], String(bytes.length));
  assert.equal(head.headers['cache-control'], 'no-store');

  assert.equal((await patch(url, 0, bytes.subarray(0, 100_000))).status, 204);
  head = await tus('HEAD', url);
  assert.equal(head.headers['upload-offset'], '100000');
  assert.equal((await patch(url, 100_000, bytes.subarray(100_000, 200_000))).status, 204);
  const last = await patch(url, 200_000, bytes.subarray(200_000));
  assert.equal(last.status, 200, last.body);
  assert.equal(last.headers['tuspass-completion'], 'delivered');
  assert.equal(last.headers['upload-offset'], String(bytes.length));
  const answer = JSON.parse(last.body);
  assert.equal(answer.md5, md5(bytes));
  assert.equal(answer.size, bytes.length);
  assert.equal(answer.name, 'three.bin');

  const id = url.split('/').pop()!;
  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), bytes);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.md5, md5(bytes));
  assert.deepEqual(list[0]!.fields, { description: 'a test' });
});

test('creation-with-upload finishes a small upload in one POST, keeping 201 and Location', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(16 * 1024);
  const res = await tus(
    'POST',
    s.endpoint,
    {
      'Upload-Length': String(bytes.length),
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Metadata': metadata({ filename: 'small' }),
    },
    bytes,
  );
  assert.equal(res.status, 201);
  assert.ok(res.headers.location);
  assert.equal(res.headers['upload-offset'], String(bytes.length));
  assert.equal(res.headers['tuspass-completion'], 'delivered');
  assert.equal(JSON.parse(res.body).md5, md5(bytes));
});

test('an empty upload (Upload-Length: 0) is complete at creation', async (t) => {
  const s = await startTestServer(t);
  const res = await tus('POST', s.endpoint, {
    'Upload-Length': '0',
    'Upload-Metadata': metadata({ filename: 'empty' }),
  });
  assert.equal(res.status, 201);
  assert.equal(JSON.parse(res.body).md5, md5(''));
});

test('bad requests get tus statuses and leave the stored upload as it was', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(1000);
  const url = await create(s.endpoint, bytes.length);
  assert.equal((await patch(url, 0, bytes.subarray(0, 400))).status, 204);
  const id = url.split('/').pop()!;
  const before = fs.readFileSync(s.store.filePath(id));

  // The Tus-Resumable header MUST be included in every request: 412 without it.
  const noVersion = await fetch(url, { method: 'HEAD' });
  assert.equal(noVersion.status, 412);
  // Offsets that do not match: the Server MUST respond with 409 Conflict.
  assert.equal((await patch(url, 100, 'xxxx')).status, 409);
  assert.equal((await patch(url, 900, 'xxxx')).status, 409);
  // All PATCH requests MUST use Content-Type: application/offset+octet-stream, else 415.
  assert.equal((await tus('PATCH', url, { 'Upload-Offset': '400', 'Content-Type': 'text/plain' }, 'xx')).status, 415);
  // Missing or malformed Upload-Offset.
  assert.equal((await tus('PATCH', url, { 'Content-Type': 'application/offset+octet-stream' }, 'xx')).status, 400);
  assert.equal(
    (await tus('PATCH', url, { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': 'abc' }, 'xx'))
      .status,
    400,
  );
  // A body longer than what is left of Upload-Length.
  assert.equal((await patch(url, 400, Buffer.alloc(700))).status, 413);
  // Unknown upload.
  assert.equal((await tus('HEAD', `${s.endpoint}00000000000000000000000000000000`)).status, 404);
  assert.equal((await patch(`${s.endpoint}00000000000000000000000000000000`, 0, 'x')).status, 404);

  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), before, 'no rejected byte reached the file');
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '400');
  const done = await patch(url, 400, bytes.subarray(400));
  assert.equal(done.status, 200);
  assert.equal(JSON.parse(done.body).md5, md5(bytes), 'digest unaffected by the rejected requests');
});

test('creation refuses bad Upload-Length and Upload-Metadata', async (t) => {
  const s = await startTestServer(t);
  assert.equal((await tus('POST', s.endpoint, {})).status, 400, 'neither Upload-Length nor Upload-Defer-Length');
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '-5' })).status, 400);
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': 'ten' })).status, 400);
  assert.equal(
    (await tus('POST', s.endpoint, { 'Upload-Length': '10', 'Upload-Metadata': 'filename not*base64!' })).status,
    400,
  );
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '10', 'Upload-Defer-Length': '1' })).status, 400);
  assert.deepEqual(fs.readdirSync(s.config.storeDir), [], 'nothing created');
});

test('termination removes the upload and its digest state', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 100);
  await patch(url, 0, Buffer.alloc(10));
  const del = await tus('DELETE', url);
  assert.equal(del.status, 204);
  assert.deepEqual(fs.readdirSync(s.config.storeDir), []);
  assert.equal((await tus('HEAD', url)).status, 404);
});
