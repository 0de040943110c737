// Uploads through tuspass into S3 (S3_BUCKET), against a real S3 server (Ceph's radosgw, started for
// this file): tus-js-client with the md5 in the catalog and on the object, a server killed with
// SIGKILL mid-upload and the upload resumed on another to the right md5, DELETE aborting the
// multipart upload, deferred length, a download with Range, concatenation listed in OPTIONS,
// two instances on one bucket with the Redis locker, S3 away and back, the announcement of uploads
// finished before a stop, the IETF draft.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import * as tusClient from 'tus-js-client';
import { S3UploadStore } from '../server/backends/store/s3/s3-store.ts';
import { watchChild } from './helpers/child-crash.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { freePort } from './helpers/ports.ts';
import { s3Settings as settingsOf, startS3Server } from './helpers/s3-server.ts';
import { startSilentProxy } from './helpers/silent-proxy.ts';
import { delta, scrape } from './helpers/metrics.ts';
import { prefixFor, REDIS } from './helpers/redis-pair.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, tus } from './helpers/tus.ts';
import { exchange } from './helpers/draft-http.ts';
import { pieces } from './helpers/store-contract.ts';

const MIB = 2 ** 20;
const BIN = path.resolve('bin/tuspass.js');
const server = await startS3Server();
const skip = typeof server === 'string' ? server : false;

/** tuspass on the S3 server, each test under its own prefix. */
function s3Settings() {
  if (typeof server === 'string') throw new Error(server);
  return settingsOf(server);
}

const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;

/** A PATCH of the whole of `bytes` whose first `sent` bytes are on their way; the rest never comes. */
function patchStarted(url: string, bytes: Buffer, sent: number): http.ClientRequest {
  const req = http.request(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(bytes.length),
    },
  });
  req.on('error', () => {});
  req.write(bytes.subarray(0, sent));
  return req;
}

/** Waits until the upload's record in the bucket names parts of at least `size` bytes (its writer is sending). */
async function partsInBucket(prefix: string, id: string, size: number): Promise<void> {
  if (typeof server === 'string') return;
  const reader = new S3UploadStore({
    s3: server.client,
    bucket: server.bucket,
    prefix,
    algorithms: ['md5'],
    partSize: 5 * MIB,
    equalParts: false,
    partsInFlight: 1,
  });
  for (let i = 0; ((await reader.written(id))?.size ?? 0) < size; i++) {
    assert.ok(i < 2400, 'the writer sent no part');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('tus-js-client uploads into S3: md5 in the answer and the catalog, .path the object, GET with Range from S3', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  const s = await startTestServer(t, settings);
  const bytes = patternBytes(17 * MIB + 4321, 21);
  const outcome = await new Promise<{ url: string; body: string; completion: string | undefined }>(
    (resolve, reject) => {
      const upload: tusClient.Upload = new tusClient.Upload(bytes, {
        endpoint: s.endpoint,
        chunkSize: 6 * MIB,
        retryDelays: [],
        metadata: { filename: 'to-s3.bin', filetype: 'application/octet-stream' },
        onSuccess: ({ lastResponse }) =>
          resolve({
            url: upload.url!,
            body: lastResponse.getBody(),
            completion: lastResponse.getHeader('Tuspass-Completion'),
          }),
        onError: reject,
      });
      upload.start();
    },
  );
  assert.equal(outcome.completion, 'delivered');
  assert.equal(JSON.parse(outcome.body).md5, md5(bytes));
  const id = idOf(outcome.url);
  const [record] = await recordsWhenPresent(s.url, 1, 30_000);
  assert.equal(record!.md5, md5(bytes));
  const key = `${settings.s3Prefix}${id}`;
  const object = await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
  assert.equal(md5(Buffer.from(await object.Body!.transformToByteArray())), md5(bytes));
  assert.equal(object.ContentType, 'application/octet-stream');
  // The form's .path is the object, as the completion service checked it (HeadObject).
  const detail = (await (await fetch(`${s.url}/api/uploads/${record!.id}`)).json()) as { path?: string };
  if (detail.path !== undefined) assert.equal(detail.path, `s3://${server.bucket}/${key}`);
  const ranged = await fetch(outcome.url, { headers: { 'Tus-Resumable': '1.0.0', Range: 'bytes=5242870-5242889' } });
  assert.equal(ranged.status, 206);
  assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(5242870, 5242890)));
  // The catalog's download reads the object too; removing the record removes the object.
  const download = Buffer.from(await (await fetch(`${s.url}${JSON.parse(outcome.body).url}`)).arrayBuffer());
  assert.equal(md5(download), md5(bytes));
  assert.equal((await fetch(`${s.url}/api/uploads/${record!.id}`, { method: 'DELETE' })).status, 204);
  await assert.rejects(server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key })));
});

test('an upload server killed with SIGKILL mid-PATCH: the upload resumes on another from the parts S3 holds, to the \
right md5', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  const b = await startTestServer(t, settings);
  const port = await freePort();
  const a = spawn(
    process.execPath,
    [BIN, 'upload-server', '--port', String(port), '--host', '127.0.0.1', '--data-dir', tmpDir(t)],
    {
      env: {
        ...process.env,
        S3_BUCKET: server.bucket,
        S3_ENDPOINT: server.endpoint,
        S3_REGION: server.region,
        S3_ACCESS_KEY_ID: server.accessKeyId,
        S3_SECRET_ACCESS_KEY: server.secretAccessKey,
        S3_FORCE_PATH_STYLE: 'true',
        S3_PREFIX: settings.s3Prefix,
        S3_PART_SIZE: '5MiB',
        COMPLETION_URL: b.completionUrl,
        COMPLETION_SECRET: 'test-secret-0123456789',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  watchChild(t, a);
  let out = '';
  a.stdout.on('data', (d: Buffer) => (out += d));
  const exited = new Promise((r) => a.on('exit', (code, signal) => r(signal ?? code)));
  t.after(() => {
    if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  });
  const aUrl = `http://127.0.0.1:${port}`;
  for (
    let i = 0;
    !(await fetch(`${aUrl}/files/`, { method: 'OPTIONS' }).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  ) {
    assert.ok(i < 1200, `A did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const bytes = patternBytes(23 * MIB + 99, 22);
  const url = await create(`${aUrl}/files/`, bytes.length, { filename: 'killed.bin' });
  const id = idOf(url);
  const req = patchStarted(url, bytes, 16 * MIB);
  // A holds the lock: watch the record in the bucket until it names two parts sent.
  await partsInBucket(settings.s3Prefix, id, 10 * MIB);
  a.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  req.destroy();

  const onB = `${b.url}${new URL(url).pathname}`;
  const head = await tus('HEAD', onB);
  assert.equal(head.status, 200);
  const offset = Number(head.headers['upload-offset']);
  assert.ok(offset >= 10 * MIB && offset <= 16 * MIB && offset % (5 * MIB) === 0, `offset ${offset}`);
  const rest = await patch(onB, offset, bytes.subarray(offset));
  // 200 with the completion's answer (the upload finished with this PATCH).
  assert.equal(rest.status, 200, rest.body);
  assert.equal(JSON.parse(rest.body).md5, md5(bytes));
  const records = await recordsWhenPresent(b.url, 1, 30_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(bytes)],
  );
});

test('DELETE of an unfinished S3 upload aborts its multipart upload; the upload is gone', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  const s = await startTestServer(t, settings);
  const url = await create(s.endpoint, 12 * MIB);
  assert.equal((await patch(url, 0, patternBytes(6 * MIB, 23))).status, 204);
  const uploads = async () =>
    (
      (await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: settings.s3Prefix })))
        .Uploads ?? []
    ).length;
  assert.equal(await uploads(), 1);
  assert.equal((await tus('DELETE', url)).status, 204);
  assert.equal(await uploads(), 0);
  assert.equal((await tus('HEAD', url)).status, 404);
  assert.equal((await tus('DELETE', url)).status, 404);
});

test('deferred length on S3: bytes before the length, the length with the last PATCH, the right md5', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, s3Settings());
  const bytes = patternBytes(7 * MIB + 5, 24);
  const created = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
  assert.equal(created.status, 201);
  const url = new URL(created.headers.location!, s.endpoint).toString();
  assert.equal((await patch(url, 0, bytes.subarray(0, 3 * MIB))).status, 204);
  const head = await tus('HEAD', url);
  assert.equal(head.headers['upload-defer-length'], '1');
  assert.equal(head.headers['upload-offset'], String(3 * MIB));
  const last = await patch(url, 3 * MIB, bytes.subarray(3 * MIB), { 'Upload-Length': String(bytes.length) });
  assert.equal(last.status, 200, last.body);
  const records = await recordsWhenPresent(s.url, 1, 30_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(bytes)],
  );
});

test('OPTIONS on S3 lists concatenation (test/s3-concat.test.ts builds finals there)', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, s3Settings());
  const options = await tus('OPTIONS', s.endpoint);
  assert.ok(options.headers['tus-extension']!.split(',').includes('concatenation'));
});

test('S3: creation-with-upload, a PATCH refused by its checksum (460, nothing kept), an Upload-Length past 5 TiB \
(413)', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, s3Settings());
  const before = (await scrape(`${s.url}/metrics`)).metrics;
  const bytes = patternBytes(6 * MIB + 1, 25);
  const first = bytes.subarray(0, 2 * MIB);
  const created = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': String(bytes.length), 'Content-Type': 'application/offset+octet-stream' },
    first,
  );
  assert.equal(created.status, 201, created.body);
  assert.equal(created.headers['upload-offset'], String(first.length));
  const url = new URL(created.headers.location!, s.endpoint).toString();
  const wrong = await patch(url, first.length, bytes.subarray(first.length), {
    'Upload-Checksum': `md5 ${Buffer.from(md5('not this'), 'hex').toString('base64')}`,
  });
  assert.equal(wrong.status, 460);
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], String(first.length));
  const right = await patch(url, first.length, bytes.subarray(first.length), {
    'Upload-Checksum': `md5 ${Buffer.from(md5(bytes.subarray(first.length)), 'hex').toString('base64')}`,
  });
  assert.equal(right.status, 200, right.body);
  assert.equal(JSON.parse(right.body).md5, md5(bytes));
  // Counted as received on S3 as on the file store: the creation's body and the accepted PATCH, not the refused one.
  const after = (await scrape(`${s.url}/metrics`)).metrics;
  assert.equal(delta(before, after, 'tusd_bytes_received'), bytes.length);
  const huge = await tus('POST', s.endpoint, { 'Upload-Length': String(5 * 2 ** 40 + 1) });
  assert.equal(huge.status, 413, huge.body);
});

test('two instances on one bucket with Redis: a PATCH on A is taken over by a HEAD on B, which continues the upload \
to the right md5', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  const prefix = prefixFor(t);
  const a = await startTestServer(t, { ...settings, redisUrl: REDIS, redisLockTtlMs: 3000 }, { redisPrefix: prefix });
  const b = await startTestServer(
    t,
    { ...settings, redisUrl: REDIS, redisLockTtlMs: 3000, completionUrl: a.completionUrl },
    { redisPrefix: prefix, completion: false },
  );
  const bytes = patternBytes(13 * MIB + 7, 26);
  const url = await create(a.endpoint, bytes.length, { filename: 'two.bin' });
  const id = idOf(url);
  const req = patchStarted(url, bytes, 8 * MIB);
  // The first part in the bucket's record: A is writing.
  await partsInBucket(settings.s3Prefix, id, 5 * MIB);
  // B's HEAD asks A to let go: A keeps what it read (its last bytes as the tail) and B answers that offset.
  const onB = `${b.url}${new URL(url).pathname}`;
  const head = await tus('HEAD', onB);
  assert.equal(head.status, 200);
  const offset = Number(head.headers['upload-offset']);
  assert.ok(offset >= 5 * MIB && offset <= 8 * MIB, `offset ${offset}`);
  req.destroy();
  const rest = await patch(onB, offset, bytes.subarray(offset));
  assert.equal(rest.status, 200, rest.body);
  assert.equal(JSON.parse(rest.body).md5, md5(bytes));
  const records = await recordsWhenPresent(a.url, 1, 30_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(bytes)],
  );
});

test('S3 away mid-upload: the PATCH answers 503 and HEAD 423 (clients retry), and once it is back the upload resumes \
from the parts it holds to the right md5', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, s3Settings());
  const bytes = patternBytes(12 * MIB + 3, 27);
  const url = await create(s.endpoint, bytes.length);
  assert.equal((await patch(url, 0, bytes.subarray(0, 6 * MIB))).status, 204);
  await server.pause();
  try {
    const refused = await patch(url, 6 * MIB, bytes.subarray(6 * MIB));
    assert.equal(refused.status, 503, refused.body);
    assert.equal((await tus('HEAD', url)).status, 423);
    const ready = await fetch(`${s.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /S3_BUCKET/);
  } finally {
    await server.resume();
  }
  assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
  const head = await tus('HEAD', url);
  assert.equal(head.status, 200);
  const offset = Number(head.headers['upload-offset']);
  assert.equal(offset, 6 * MIB);
  const rest = await patch(url, offset, bytes.subarray(offset));
  assert.equal(rest.status, 200, rest.body);
  assert.equal(JSON.parse(rest.body).md5, md5(bytes));
});

test('S3 gone silent mid-upload (connections open, nothing answered): the PATCH answers 503 after S3_TIMEOUT, the \
server stays up, and once S3 speaks again the upload resumes to the right md5', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const relay = await startSilentProxy(server.endpoint);
  const s = await startTestServer(t, { ...s3Settings(), s3Endpoint: relay.url, s3TimeoutMs: 1000 });
  const bytes = patternBytes(12 * MIB + 5, 31);
  const url = await create(s.endpoint, bytes.length);
  assert.equal((await patch(url, 0, bytes.subarray(0, 6 * MIB))).status, 204);
  relay.silent(true);
  try {
    const started = Date.now();
    const refused = await patch(url, 6 * MIB, bytes.subarray(6 * MIB));
    assert.equal(refused.status, 503, refused.body);
    assert.match(refused.body, /ERR_OBJECT_STORE_UNAVAILABLE/);
    // Not the first silent second: the part waited S3_TIMEOUT; not forever either (the SDK's retries
    // each wait it again).
    assert.ok(Date.now() - started >= 1000, `answered after ${Date.now() - started} ms`);
  } finally {
    relay.silent(false);
  }
  const head = await tus('HEAD', url);
  assert.equal(head.status, 200);
  const offset = Number(head.headers['upload-offset']);
  assert.ok(offset <= 6 * MIB, `offset ${offset}`);
  const rest = await patch(url, offset, bytes.subarray(offset));
  assert.equal(rest.status, 200, rest.body);
  assert.equal(JSON.parse(rest.body).md5, md5(bytes));
});

test('an S3 upload finished before a stop without its completion handled is announced at the next start, once', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  // What a process killed between the last byte and the form leaves: the object complete, its record not marked
  // handled.
  const store = new S3UploadStore({
    s3: server.client,
    bucket: server.bucket,
    prefix: settings.s3Prefix,
    algorithms: ['md5'],
    partSize: 5 * MIB,
    equalParts: false,
    partsInFlight: 2,
  });
  const bytes = patternBytes(5 * MIB + 17, 28);
  await store.create(
    new Upload({ id: 'finishedbeforestop', size: bytes.length, offset: 0, metadata: { filename: 'early.bin' } }),
  );
  await store.append(pieces(bytes), 'finishedbeforestop', 0, { size: bytes.length });
  const s = await startTestServer(t, settings);
  const records = await recordsWhenPresent(s.url, 1, 30_000);
  assert.deepEqual(
    records.map((r) => [r.name, r.md5]),
    [['early.bin', md5(bytes)]],
  );
  // Marked handled: a second start announces nothing.
  for (let i = 0; (await store.awaitingCompletion()).length > 0; i++) {
    assert.ok(i < 600, 'never marked handled');
    await new Promise((r) => setTimeout(r, 50));
  }
  await s.close();
  const again = await startTestServer(t, { ...settings, dataDir: s.config.dataDir });
  assert.ok(
    again.logs.some((line) => /0 upload\(s\) finished before the last stop/.test(line)),
    again.logs.join('\n'),
  );
});

test('a form queued and later rejected removes the S3 upload then: its object and record leave the bucket', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  // The app is away (502) when the upload finishes, then refuses the form (422): a rejection.
  let calls = 0;
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(++calls === 1 ? 502 : 422).end('no'));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => app.close(r)));
  const completionUrl = `http://127.0.0.1:${(app.address() as { port: number }).port}/complete/`;
  const s = await startTestServer(t, { ...settings, completionUrl, retryMinMs: 50 });
  const bytes = patternBytes(1000, 30);
  const url = await create(s.endpoint, bytes.length, { filename: 'refused.bin' });
  const last = await patch(url, 0, bytes);
  assert.equal(last.headers['tuspass-completion'], 'pending');
  assert.ok(await s.queue.drained(10_000));
  assert.equal(calls, 2);
  const left = await server.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: settings.s3Prefix }));
  assert.deepEqual(
    (left.Contents ?? []).map((o) => o.Key),
    [],
    'nothing of the refused upload is left in the bucket',
  );
  assert.equal((await tus('HEAD', url)).status, 404);
});

test('the IETF draft on S3: a creation with part of the body, the offset, the rest as the last append, the md5 \
recorded', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, s3Settings());
  const bytes = patternBytes(6 * MIB + 9, 29);
  const created = await exchange(
    'POST',
    s.endpoint,
    { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?0', 'Content-Type': 'application/octet-stream' },
    bytes.subarray(0, 2 * MIB),
  );
  created.conn.socket.destroy();
  assert.equal(created.final.status, 201, created.final.body.toString());
  const url = created.final.headers.location!;
  const offset = await exchange('HEAD', url, { 'Upload-Draft-Interop-Version': 8 });
  offset.conn.socket.destroy();
  assert.equal(offset.final.headers['upload-offset'], String(2 * MIB));
  const last = await exchange(
    'PATCH',
    url,
    {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Offset': 2 * MIB,
      'Upload-Complete': '?1',
      'Content-Type': 'application/partial-upload',
    },
    bytes.subarray(2 * MIB),
  );
  last.conn.socket.destroy();
  assert.ok(last.final.status >= 200 && last.final.status < 300, `${last.final.status} ${last.final.body}`);
  const records = await recordsWhenPresent(s.url, 1, 30_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(bytes)],
  );
});

test('S3_DOWNLOAD_REDIRECT: GET of a finished upload answers 302 to a presigned URL that serves the bytes; an \
unfinished one is still refused', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, { ...s3Settings(), s3DownloadRedirectMs: 60_000 });
  const bytes = patternBytes(MIB + 5, 30);
  const url = await create(s.endpoint, bytes.length, { filename: 'redirected.bin' });
  const unfinished = await create(s.endpoint, 10);
  assert.equal((await patch(url, 0, bytes)).status, 200);
  const answer = await fetch(url, { redirect: 'manual' });
  assert.equal(answer.status, 302);
  const location = answer.headers.get('location')!;
  assert.match(location, /X-Amz-Signature=/);
  assert.equal(answer.headers.get('cache-control'), 'no-store');
  const fromS3 = await fetch(location);
  assert.equal(fromS3.status, 200);
  assert.equal(md5(Buffer.from(await fromS3.arrayBuffer())), md5(bytes));
  assert.notEqual((await fetch(unfinished, { redirect: 'manual' })).status, 302);
});

test('S3: a creation-with-upload whose body runs past its Upload-Length is refused (413) and leaves nothing in the \
bucket', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings();
  const s = await startTestServer(t, settings);
  const created = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream' },
    patternBytes(20, 31),
  );
  assert.equal(created.status, 413, created.body);
  const listed = await server.client.send(
    new ListObjectsV2Command({ Bucket: server.bucket, Prefix: settings.s3Prefix }),
  );
  assert.deepEqual(
    (listed.Contents ?? []).map((o) => o.Key),
    [],
  );
  const multipart = await server.client.send(
    new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: settings.s3Prefix }),
  );
  assert.equal((multipart.Uploads ?? []).length, 0);
});
