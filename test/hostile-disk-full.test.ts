// A full disk, for real: a small tmpfs mounted by the test holds DATA_DIR and the store. Creations
// the store cannot hold are refused with 507 before a byte is written; a PATCH that meets ENOSPC
// answers 507, keeps what it wrote, and the upload resumes to the right md5 once space is freed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.ts';
import { request } from 'undici';
import { curl } from './helpers/multipart.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, PATCH_TYPE, TUS, tus } from './helpers/tus.ts';

const MiB = 2 ** 20;

async function serverOnTmpfs(t: TestContext, bytes: number) {
  const dir = mountTmpfs(t, bytes);
  if (!dir) return undefined;
  // One anonymous client here: its share of the store is not what these tests are about.
  const s = await startTestServer(t, {
    dataDir: path.join(dir, 'data'),
    minFreeSpace: MiB,
    ownerMaxOwed: { share: 1 },
  });
  return { dir, s };
}

const storeFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort();

test('creation is admitted only when the store holds it, \
counting what unfinished uploads and finals are owed', async (t) => {
  const on = await serverOnTmpfs(t, 64 * MiB);
  if (!on) return;
  const { s } = on;
  const a = await create(s.endpoint, 40 * MiB);
  const refused = await tus('POST', s.endpoint, { 'Upload-Length': String(40 * MiB) });
  assert.equal(refused.status, 507, 'the first upload is owed 40 MiB, though not a byte of it is written');
  assert.match(refused.body, /^ERR_STORAGE_FULL: /);
  assert.ok(!refused.body.includes(on.dir), 'no path in the answer');
  // Bytes written move from "owed" to "used"; removing an unfinished upload releases what it was owed.
  assert.equal((await patch(a, 0, patternBytes(MiB))).status, 204);
  assert.equal(s.store.space.owed, 39 * MiB);
  assert.equal((await tus('DELETE', a)).status, 204);
  assert.equal(s.store.space.owed, 0);
  const b = await create(s.endpoint, 40 * MiB);

  // A deferred length is admitted when a PATCH declares it.
  const deferred = new URL(
    (await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' })).headers.location!,
    s.endpoint,
  ).toString();
  const declared = await patch(deferred, 0, '', { 'Upload-Length': String(40 * MiB) });
  assert.equal(declared.status, 507, declared.body);
  assert.equal((await tus('HEAD', deferred)).headers['upload-defer-length'], '1', 'the length is still to come');

  // A final counts whole: two 8 MiB partials (16 MiB used) and b's 40 MiB owed leave no room for 16 MiB more.
  const parts: string[] = [];
  for (const variant of [1, 2]) {
    const res = await tus('POST', s.endpoint, { 'Upload-Length': String(8 * MiB), 'Upload-Concat': 'partial' });
    assert.equal(res.status, 201, res.body);
    const url = new URL(res.headers.location!, s.endpoint).toString();
    assert.equal((await patch(url, 0, patternBytes(8 * MiB, variant))).status, 204);
    parts.push(url);
  }
  const before = storeFiles(s.config.storeDir);
  const final = () => tus('POST', s.endpoint, { 'Upload-Concat': `final;${parts.join(' ')}` });
  const tooBig = await final();
  assert.equal(tooBig.status, 507, tooBig.body);
  assert.deepEqual(storeFiles(s.config.storeDir), before, 'no final file started');
  assert.equal((await tus('DELETE', b)).status, 204);
  const built = await final();
  assert.equal(built.status, 201, built.body);
  assert.equal(JSON.parse(built.body).md5, md5(Buffer.concat([patternBytes(8 * MiB, 1), patternBytes(8 * MiB, 2)])));
});

test('a PATCH into a full disk answers 507 and keeps what it wrote; once space is freed the upload resumes to the \
right md5', async (t) => {
  const on = await serverOnTmpfs(t, 32 * MiB);
  if (!on) return;
  const { s, dir } = on;
  const bytes = patternBytes(8 * MiB, 3);
  const url = await create(s.endpoint, bytes.length, { filename: 'full.bin' });
  const id = url.split('/').pop()!;
  assert.equal((await patch(url, 0, bytes.subarray(0, MiB))).status, 204);

  // Room for about 2 MiB more: the next PATCH (4 MiB) meets ENOSPC on the way.
  const filler = fillDisk(dir, 2 * MiB);
  const full = await patch(url, MiB, bytes.subarray(MiB, 5 * MiB));
  assert.equal(full.status, 507, full.body);
  assert.match(full.body, /^ERR_STORAGE_FULL: /);
  assert.ok(
    s.logs.some((l) => l.startsWith(`space: the store's disk is full: writing upload ${id}`)),
    s.logs.join('\n'),
  );
  const offset = Number((await tus('HEAD', url)).headers['upload-offset']);
  assert.ok(offset > MiB && offset < 5 * MiB, `kept what was written (offset ${offset})`);
  assert.deepEqual(
    fs.readFileSync(s.store.filePath(id)),
    bytes.subarray(0, offset),
    'the file holds exactly the bytes sent',
  );
  assert.equal((await fetch(`${s.url}/health`)).status, 200, 'the server is up');
  // The disk is known full now: a creation is refused before it writes anything.
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '1000' })).status, 507);
  // A creation-with-upload that meets ENOSPC (or is refused first) leaves nothing behind.
  const withBody = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': String(3 * MiB), 'Content-Type': 'application/offset+octet-stream' },
    patternBytes(3 * MiB),
  );
  assert.equal(withBody.status, 507, withBody.body);
  assert.deepEqual(
    storeFiles(s.config.storeDir),
    [id, `${id}.digest`, `${id}.json`].filter((n) => fs.existsSync(path.join(s.config.storeDir, n))),
  );
  assert.ok(!fs.readdirSync(s.config.storeDir).some((n) => n.endsWith('.tmp')), 'no temp file left by a failed save');

  fs.rmSync(filler);
  const resumed = await patch(url, offset, bytes.subarray(offset));
  assert.ok(resumed.status < 300, resumed.body);
  const records = await recordsWhenPresent(s.url, 1);
  assert.equal(records.length, 1, 'one catalog record');
  assert.equal(
    records[0]!.md5,
    md5(bytes),
    'the md5 of every byte, though the digest state could not be saved on the full disk',
  );
  assert.equal(s.store.space.owed, 0);
});

/** A body sent chunked (no Content-Length), in 1 MiB pieces. */
async function* chunked(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += MiB) yield bytes.subarray(at, at + MiB);
}

const freeOf = (dir: string) => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};

test('an upload of deferred length is admitted as its bytes stream: a PATCH past the reserve is refused 507, the bytes \
before it kept', async (t) => {
  const dir = mountTmpfs(t, 64 * MiB);
  if (!dir) return;
  // About 24 MiB admissible: 40 MiB of the 64 are the reserve.
  const reserve = 40 * MiB;
  const s = await startTestServer(t, {
    dataDir: path.join(dir, 'data'),
    minFreeSpace: reserve,
    ownerMaxOwed: { share: 1 },
  });
  const created = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
  assert.equal(created.status, 201, created.body);
  const url = new URL(created.headers.location!, s.endpoint).toString();
  const id = url.split('/').pop()!;
  const bytes = patternBytes(32 * MiB, 7);

  const res = await request(url, {
    method: 'PATCH',
    headers: { ...TUS, ...PATCH_TYPE, 'Upload-Offset': '0' },
    body: Readable.from(chunked(bytes)),
  });
  const body = await res.body.text();
  assert.equal(res.statusCode, 507, body);
  assert.match(body, /^ERR_STORAGE_FULL: /);
  // The bytes written before the refusal stay (the offset a HEAD reports is valid, as after ENOSPC).
  const kept = Number((await tus('HEAD', url)).headers['upload-offset']);
  assert.ok(kept > 0 && kept < 32 * MiB, `kept ${kept}`);
  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), bytes.subarray(0, kept));
  assert.ok(freeOf(dir) >= reserve - MiB, `the reserve is kept: ${freeOf(dir)} bytes free`);

  // With a Content-Length past the room, nothing is read.
  const whole = await patch(url, kept, bytes.subarray(kept));
  assert.equal(whole.status, 507, whole.body);
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], String(kept));
  // Removing it frees its bytes for the next upload.
  assert.equal((await tus('DELETE', url)).status, 204);
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': String(16 * MiB) })).status, 201);
});

test('a chunked multipart body past the reserve is refused 507 on the way, and nothing of it is kept', async (t) => {
  const dir = mountTmpfs(t, 64 * MiB);
  if (!dir) return;
  const reserve = 40 * MiB;
  const s = await startTestServer(t, {
    dataDir: path.join(dir, 'data'),
    minFreeSpace: reserve,
    ownerMaxOwed: { share: 1 },
  });
  const file = path.join(tmpDir(t), 'big.bin');
  fs.writeFileSync(file, patternBytes(32 * MiB, 8));
  const r = await curl(['-H', 'Transfer-Encoding: chunked', '-F', `file1=@${file}`, `${s.url}/upload`]);
  assert.equal(r.status, 507, r.body);
  assert.equal(JSON.parse(r.body).error.code, 'ERR_STORAGE_FULL');
  assert.deepEqual(storeFiles(s.config.storeDir), [], 'nothing kept');
  assert.deepEqual(await recordsWhenPresent(s.url, 0), []);
  assert.ok(freeOf(dir) >= reserve - MiB, `the reserve is kept: ${freeOf(dir)} bytes free`);
});
