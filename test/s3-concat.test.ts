// Concatenation on the S3 store (S3_BUCKET), against a real S3 server (Ceph's radosgw, started for
// this file): tus-js-client's parallel uploads and raw finals of small and large partials, with the
// final's md5 (and sha1, crc32) in the catalog and of the object S3 holds; the partials go (or stay
// with KEEP_PARTIALS); the refusals are the file store's, code for code; a partial's object gone
// from the bucket ends the build with nothing left of the final; the final counts whole against its
// owner's OWNER_MAX_OWED.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as tusClient from 'tus-js-client';
import { crc32, md5, patternBytes, sha1 } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { s3Settings, startS3Server } from './helpers/s3-server.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { patch, tus } from './helpers/tus.ts';

const MiB = 2 ** 20;
const server = await startS3Server();
const skip = typeof server === 'string' ? server : false;
const alice = bearer(tokenFor('alice', 'upload'));
const bob = bearer(tokenFor('bob', 'upload'));

const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;

/** A partial upload of `bytes` (sent whole unless `finish` is false); its URL. */
async function partial(s: TestServer, bytes: Buffer, headers: Record<string, string> = {}, finish = true) {
  const res = await tus('POST', s.endpoint, {
    ...headers,
    'Upload-Length': String(bytes.length),
    'Upload-Concat': 'partial',
  });
  assert.equal(res.status, 201, res.body);
  const url = new URL(res.headers.location!, s.endpoint).toString();
  if (finish && bytes.length > 0) assert.equal((await patch(url, 0, bytes, headers)).status, 204);
  return url;
}

const final = (s: TestServer, urls: string[], headers: Record<string, string> = {}) =>
  tus('POST', s.endpoint, { ...headers, 'Upload-Concat': `final;${urls.join(' ')}` });

/** The object S3 holds under `key`: its bytes' md5. */
async function objectMd5(key: string): Promise<string> {
  if (typeof server === 'string') return '';
  const got = await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
  return md5(Buffer.from(await got.Body!.transformToByteArray()));
}

async function keysUnder(prefix: string): Promise<string[]> {
  if (typeof server === 'string') return [];
  const page = await server.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

test('tus-js-client parallelUploads into S3: partials under 5 MiB concatenated, the md5 in the answer, the catalog \
and of the object; the partials gone', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings(server);
  const s = await startTestServer(t, settings);
  const bytes = patternBytes(13 * MiB + 333, 51);
  const outcome = await new Promise<{ url: string; body: string }>((resolve, reject) => {
    const upload: tusClient.Upload = new tusClient.Upload(bytes, {
      endpoint: s.endpoint,
      parallelUploads: 4,
      retryDelays: [],
      metadata: { filename: 'parallel.bin' },
      onSuccess: ({ lastResponse }) => resolve({ url: upload.url!, body: lastResponse.getBody() }),
      onError: reject,
    });
    upload.start();
  });
  assert.equal(JSON.parse(outcome.body).md5, md5(bytes));
  const [record] = await recordsWhenPresent(s.url, 1, 30_000);
  assert.equal(record!.md5, md5(bytes));
  assert.equal(record!.size, bytes.length);
  const id = idOf(outcome.url);
  assert.equal(await objectMd5(`${settings.s3Prefix}${id}`), md5(bytes));
  // Only the final's object and record are left: the partials' multipart uploads, objects and records went.
  assert.deepEqual(await keysUnder(settings.s3Prefix), [`${settings.s3Prefix}${id}`, `${settings.s3Prefix}${id}.info`]);
});

test('S3 finals of small, empty and large partials, in the order listed: md5, sha1 and crc32 of the whole, HEAD, \
PATCH refused; KEEP_PARTIALS keeps them', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings(server);
  const s = await startTestServer(t, { ...settings, digests: ['sha1', 'crc32'], keepPartials: true });
  const parts = [
    patternBytes(100, 1),
    patternBytes(7 * MiB + 3, 2),
    Buffer.alloc(0),
    patternBytes(3 * MiB, 3),
    patternBytes(11 * MiB + 1, 4),
  ];
  const urls: string[] = [];
  for (const p of parts) urls.push(await partial(s, p));
  // Listed in another order than made: the final is the partials in the order listed.
  const order = [3, 0, 4, 2, 1];
  const whole = Buffer.concat(order.map((i) => parts[i]!));
  const started = Date.now();
  const res = await final(
    s,
    order.map((i) => urls[i]!),
  );
  const took = Date.now() - started;
  assert.equal(res.status, 201, res.body);
  t.diagnostic(`final of ${whole.length} bytes from 5 partials built in ${took} ms \
(${(whole.length / MiB / (took / 1000)).toFixed(1)} MiB/s, completion included)`);
  const finalUrl = new URL(res.headers.location!, s.endpoint).toString();
  const id = idOf(finalUrl);
  assert.equal(JSON.parse(res.body).md5, md5(whole));
  const [record] = await recordsWhenPresent(s.url, 1, 30_000);
  assert.equal(record!.md5, md5(whole));
  assert.equal(record!.sha1, sha1(whole));
  assert.equal(record!.crc32, crc32(whole));
  assert.equal(await objectMd5(`${settings.s3Prefix}${id}`), md5(whole));

  const head = await tus('HEAD', finalUrl);
  assert.equal(head.headers['upload-offset'], String(whole.length));
  assert.match(head.headers['upload-concat']!, /^final;/);
  assert.equal((await tus('HEAD', urls[0]!)).headers['upload-concat'], 'partial');
  // "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final upload URL"
  assert.equal((await patch(finalUrl, whole.length, 'x')).status, 403);
  // KEEP_PARTIALS: every partial is still there, whole; a second final of the same partials is built again.
  for (const [i, url] of urls.entries())
    assert.equal((await tus('HEAD', url)).headers['upload-offset'], String(parts[i]!.length));
  const again = await final(s, [urls[1]!, urls[0]!]);
  assert.equal(again.status, 201, again.body);
  assert.equal(JSON.parse(again.body).md5, md5(Buffer.concat([parts[1]!, parts[0]!])));
});

/** Every refusal of a final the file store answers, asked of `s`: [what, status, code] for each. */
async function refusals(s: TestServer): Promise<Array<[string, number, string]>> {
  const done = await partial(s, patternBytes(100, 7), alice);
  const bobs = await partial(s, patternBytes(100, 8), bob);
  const unfinished = await partial(s, patternBytes(100, 9), alice, false);
  const plain = new URL(
    (await tus('POST', s.endpoint, { ...alice, 'Upload-Length': '5' })).headers.location!,
    s.endpoint,
  ).toString();
  const missing = `${s.endpoint}ffffffffffffffffffffffffffffffff`;
  const asked: Array<[string, string[], Record<string, string>]> = [
    ["another owner's partial", [done, bobs], alice],
    ['no token', [done], {}],
    ['an unfinished partial', [done, unfinished], alice],
    ['not a partial', [done, plain], alice],
    ['a missing partial', [done, missing], alice],
    ['the id spelled in capitals', [done.replace(idOf(done), idOf(done).toUpperCase())], alice],
    // On S3 `<id>.info` is the key of the partial's record, `<id>.tail.0` of a tail.
    ['the id with .info after it', [`${done}.info`], alice],
    ['the id with .tail.0 after it', [`${done}.tail.0`], alice],
    ['listed twice', [done, done], alice],
    ['not our URL', ['http://elsewhere.example/other/abc'], alice],
    ['the final itself, with Upload-Length', [done], { ...alice, 'Upload-Length': '100' }],
  ];
  const answers: Array<[string, number, string]> = [];
  for (const [what, urls, headers] of asked) {
    const res = await final(s, urls, headers);
    answers.push([what, res.status, /^(ERR_\w+)/.exec(res.body)?.[1] ?? res.body]);
  }
  return answers;
}

test("S3 refuses the finals the file store refuses, with the same status and code: another owner's partial, an \
unfinished, missing or plain one, an id spelled otherwise; nothing is made", { skip }, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings(server);
  const auth = { authJwtSecret: TEST_JWT_SECRET };
  const onFiles = await refusals(await startTestServer(t, auth));
  const s3 = await startTestServer(t, { ...settings, ...auth });
  const before = await keysUnder(settings.s3Prefix);
  const onS3 = await refusals(s3);
  assert.deepEqual(onS3, onFiles);
  t.diagnostic(onS3.map(([what, status, code]) => `${what}: ${status} ${code}`).join('; '));
  for (const [what, status] of onS3) assert.ok(status >= 400 && status < 500, `${what}: ${status}`);
  assert.equal(onS3.find(([what]) => what === "another owner's partial")![2], 'ERR_CONCAT_PARTIAL_NOT_FOUND');
  // Only the uploads refusals() made itself are in the bucket: no final was created.
  const made = (await keysUnder(settings.s3Prefix)).filter((k) => !before.includes(k));
  assert.equal(made.filter((k) => k.endsWith('.info')).length, 4);
});

test("S3: a partial's object gone from the bucket ends the build with 404 and nothing left of the final; a final \
counts whole against OWNER_MAX_OWED", { skip }, async (t) => {
  if (typeof server === 'string') return;
  const settings = s3Settings(server);
  const s = await startTestServer(t, {
    ...settings,
    authJwtSecret: TEST_JWT_SECRET,
    keepPartials: true,
    ownerMaxOwed: { bytes: 10 * MiB },
  });
  const first = await partial(s, patternBytes(6 * MiB, 1), alice);
  const second = await partial(s, patternBytes(MiB, 2), alice);
  const before = await keysUnder(settings.s3Prefix);
  await server.client.send(
    new DeleteObjectCommand({ Bucket: server.bucket, Key: `${settings.s3Prefix}${idOf(second)}` }),
  );
  const res = await final(s, [first, second], alice);
  assert.equal(res.status, 404, res.body);
  assert.match(res.body, /^ERR_CONCAT_PARTIAL_NOT_FOUND: /);
  const left = await keysUnder(settings.s3Prefix);
  assert.deepEqual(
    left,
    before.filter((k) => k !== `${settings.s3Prefix}${idOf(second)}`),
    'the half-built final went: its multipart upload, tail and record',
  );
  assert.deepEqual(s.uploads.space.ownerTotals('sub:alice'), { owed: 0, open: 0 });

  // 9 + 5 > 10: a final counts its whole length while it is built.
  const third = await partial(s, patternBytes(3 * MiB, 3), alice);
  const owing = await tus('POST', s.endpoint, { ...alice, 'Upload-Length': String(5 * MiB) });
  assert.equal(owing.status, 201);
  const refused = await final(s, [first, third], alice);
  assert.equal(refused.status, 429, refused.body);
  assert.match(refused.body, /^ERR_OWNER_SPACE_LIMIT: /);
  assert.equal((await tus('DELETE', new URL(owing.headers.location!, s.endpoint).toString(), alice)).status, 204);
  const built = await final(s, [first, third], alice);
  assert.equal(built.status, 201, built.body);
});
