// The digesting store: digests computed on the way in, kept across PATCHes and restarts, repaired
// from the file when the saved state is behind, missing or wrong.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Upload } from '@tus/utils';
import { DigestFileStore } from '../server/backends/store/digest-store.ts';
import { INLINE_MAX_BYTES } from '../server/hashing/inline-digests.ts';
import { crc32, md5, patternBytes, sha1 } from './helpers/files.ts';
import { tmpDir } from './helpers/tmp.ts';

const ALL = ['md5', 'sha1', 'crc32'] as const;

async function newUpload(store: DigestFileStore, id: string, size: number) {
  await store.create(new Upload({ id, size, offset: 0, metadata: {} }));
}

/** Writes bytes in chunks of various sizes, as a network would deliver them. */
const chunked = (b: Buffer) => Readable.from([b.subarray(0, 7), b.subarray(7, 70_000), b.subarray(70_000)]);

test('digests equal those of the whole file, across PATCHes and a new store instance (restart)', async (t) => {
  const dir = tmpDir(t);
  const bytes = patternBytes(250_000);
  let store = new DigestFileStore({ directory: dir, algorithms: ALL });
  await newUpload(store, 'u1', bytes.length);
  assert.equal(await store.write(chunked(bytes.subarray(0, 100_000)), 'u1', 0), 100_000);
  store = new DigestFileStore({ directory: dir, algorithms: ALL }); // as after a restart
  assert.equal(await store.write(chunked(bytes.subarray(100_000)), 'u1', 100_000), bytes.length);
  const d = await store.digests('u1', bytes.length);
  assert.deepEqual(d, { md5: md5(bytes), sha1: sha1(bytes), crc32: crc32(bytes), size: bytes.length });
});

test('a state behind the file (crash between write and save) is caught up from disk', async (t) => {
  const dir = tmpDir(t);
  // Larger than INLINE_MAX_BYTES: hashed on the hashing thread, whose state is saved after each write.
  const bytes = patternBytes(INLINE_MAX_BYTES + 120_000, 2);
  const store = new DigestFileStore({ directory: dir, algorithms: ['md5'] });
  await newUpload(store, 'u2', bytes.length);
  await store.write(Readable.from([bytes.subarray(0, 50_000)]), 'u2', 0);
  const saved = fs.readFileSync(store.statePath('u2'));
  await store.write(Readable.from([bytes.subarray(50_000, 180_000)]), 'u2', 50_000);
  fs.writeFileSync(store.statePath('u2'), saved); // the save of the second write "did not happen"
  await store.write(Readable.from([bytes.subarray(180_000)]), 'u2', 180_000);
  assert.equal((await store.digests('u2', bytes.length)).md5, md5(bytes));
});

test('a missing, corrupt or mismatched state is rebuilt from the file', async (t) => {
  const dir = tmpDir(t);
  const bytes = patternBytes(INLINE_MAX_BYTES + 90_000, 3);
  const store = new DigestFileStore({ directory: dir, algorithms: ['md5'] });
  await newUpload(store, 'u3', bytes.length);
  await store.write(Readable.from([bytes.subarray(0, 30_000)]), 'u3', 0);
  fs.rmSync(store.statePath('u3'));
  await store.write(Readable.from([bytes.subarray(30_000, 60_000)]), 'u3', 30_000);
  fs.writeFileSync(store.statePath('u3'), '{not json');
  await store.write(Readable.from([bytes.subarray(60_000)]), 'u3', 60_000);
  assert.equal((await store.digests('u3', bytes.length)).md5, md5(bytes));
  // Configuration changed to ask for sha1 as well: the old state lacks it and is rebuilt.
  const wider = new DigestFileStore({ directory: dir, algorithms: ['md5', 'sha1'] });
  assert.deepEqual(await wider.digests('u3', bytes.length), { md5: md5(bytes), sha1: sha1(bytes), size: bytes.length });
});

test('a small upload is hashed inline; stopped short, its \
next PATCH hashes the bytes so far from the file', async (t) => {
  const dir = tmpDir(t);
  const bytes = patternBytes(INLINE_MAX_BYTES, 5);
  const store = new DigestFileStore({ directory: dir, algorithms: ['md5', 'sha1'] });
  await newUpload(store, 'small', bytes.length);
  assert.equal(await store.write(chunked(bytes.subarray(0, 100_000)), 'small', 0), 100_000);
  // Inline states are never saved: nothing beside the file, and nothing to trust after a restart either.
  assert.equal(fs.existsSync(store.statePath('small')), false);
  const restarted = new DigestFileStore({ directory: dir, algorithms: ['md5', 'sha1'] });
  assert.equal(await restarted.write(chunked(bytes.subarray(100_000)), 'small', 100_000), bytes.length);
  assert.deepEqual(await restarted.digests('small', bytes.length), {
    md5: md5(bytes),
    sha1: sha1(bytes),
    size: bytes.length,
  });
  // In one go, in the same store: the same digests, and no state file written for it.
  await newUpload(store, 'whole', bytes.length);
  await store.write(chunked(bytes), 'whole', 0);
  assert.deepEqual(await store.digests('whole', bytes.length), {
    md5: md5(bytes),
    sha1: sha1(bytes),
    size: bytes.length,
  });
  assert.equal(fs.existsSync(store.statePath('whole')), false);
});

test('a write that fails midway keeps the state consistent with the bytes on disk', async (t) => {
  const dir = tmpDir(t);
  const bytes = patternBytes(100_000, 4);
  const store = new DigestFileStore({ directory: dir, algorithms: ['md5'] });
  await newUpload(store, 'u4', bytes.length);
  const failing = new Readable({ read() {} });
  failing.push(bytes.subarray(0, 40_000));
  setTimeout(() => failing.destroy(new Error('connection reset')), 20);
  await assert.rejects(store.write(failing, 'u4', 0));
  const onDisk = fs.statSync(store.filePath('u4')).size;
  assert.equal(onDisk, 40_000);
  await store.write(Readable.from([bytes.subarray(onDisk)]), 'u4', onDisk);
  assert.equal((await store.digests('u4', bytes.length)).md5, md5(bytes));
});

test('ids that would lead outside the store are not found', async (t) => {
  const store = new DigestFileStore({ directory: tmpDir(t), algorithms: ['md5'] });
  assert.throws(() => store.filePath('../escape'), { status_code: 404 });
});

test('a creation under the id of an existing upload is refused \
and leaves that upload whole (file, info, owed bytes)', async (t) => {
  const dir = tmpDir(t);
  const store = new DigestFileStore({ directory: dir, algorithms: ['md5'] });
  await newUpload(store, 'taken', 10);
  await store.write(Readable.from([Buffer.from('abc')]), 'taken', 0);
  const owed = store.space.owed;
  await assert.rejects(newUpload(store, 'taken', 99), { code: 'ERR_HOOK_FAILED' });
  assert.equal(fs.readFileSync(store.filePath('taken'), 'utf8'), 'abc');
  assert.equal((await store.getUpload('taken')).size, 10);
  assert.equal(store.space.owed, owed, 'still owed the 7 bytes the first upload awaits');
});
