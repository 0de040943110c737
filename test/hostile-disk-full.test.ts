// A full disk, for real: a small tmpfs mounted by the test holds DATA_DIR and the store. Creations
// the store cannot hold are refused with 507 before a byte is written; a PATCH that meets ENOSPC
// answers 507, keeps what it wrote, and the upload resumes to the right md5 once space is freed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.ts';
import { create, patch, tus } from './helpers/tus.ts';

const MiB = 2 ** 20;

async function serverOnTmpfs(t: TestContext, bytes: number) {
  const dir = mountTmpfs(t, bytes);
  if (!dir) return undefined;
  const s = await startTestServer(t, { dataDir: path.join(dir, 'data'), minFreeSpace: MiB });
  return { dir, s };
}

const storeFiles = (dir: string) => fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort();

test('creation is admitted only when the store holds it, counting what unfinished uploads and finals are owed', async (t) => {
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
  const deferred = new URL((await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' })).headers.location!, s.endpoint).toString();
  const declared = await patch(deferred, 0, '', { 'Upload-Length': String(40 * MiB) });
  assert.equal(declared.status, 507, declared.body);
  assert.equal((await tus('HEAD', deferred)).headers['upload-defer-length'], '1', 'the length is still to come');

  // A final counts whole: two 8 MiB partials (16 MiB used) and b's 40 MiB owed leave no room for 16 MiB more.
  const parts: string[] = [];
  for (const seed of [1, 2]) {
    const res = await tus('POST', s.endpoint, { 'Upload-Length': String(8 * MiB), 'Upload-Concat': 'partial' });
    assert.equal(res.status, 201, res.body);
    const url = new URL(res.headers.location!, s.endpoint).toString();
    assert.equal((await patch(url, 0, patternBytes(8 * MiB, seed))).status, 204);
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

test('a PATCH into a full disk answers 507 and keeps what it wrote; once space is freed the upload resumes to the right md5', async (t) => {
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
  assert.ok(s.logs.some((l) => l.startsWith(`space: the store's disk is full: writing upload ${id}`)), s.logs.join('\n'));
  const offset = Number((await tus('HEAD', url)).headers['upload-offset']);
  assert.ok(offset > MiB && offset < 5 * MiB, `kept what was written (offset ${offset})`);
  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), bytes.subarray(0, offset), 'the file holds exactly the bytes sent');
  assert.equal((await fetch(`${s.url}/health`)).status, 200, 'the server is up');
  // The disk is known full now: a creation is refused before it writes anything.
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '1000' })).status, 507);
  // A creation-with-upload that meets ENOSPC (or is refused first) leaves nothing behind.
  const withBody = await tus('POST', s.endpoint, { 'Upload-Length': String(3 * MiB), 'Content-Type': 'application/offset+octet-stream' }, patternBytes(3 * MiB));
  assert.equal(withBody.status, 507, withBody.body);
  assert.deepEqual(storeFiles(s.config.storeDir), [id, `${id}.digest`, `${id}.json`].filter((n) => fs.existsSync(path.join(s.config.storeDir, n))));
  assert.ok(!fs.readdirSync(s.config.storeDir).some((n) => n.endsWith('.tmp')), 'no temp file left by a failed save');

  fs.rmSync(filler);
  const resumed = await patch(url, offset, bytes.subarray(offset));
  assert.ok(resumed.status < 300, resumed.body);
  const records = await recordsWhenPresent(s.url, 1);
  assert.equal(records.length, 1, 'one catalog record');
  assert.equal(records[0]!.md5, md5(bytes), 'the md5 of every byte, though the digest state could not be saved on the full disk');
  assert.equal(s.store.space.owed, 0);
});
