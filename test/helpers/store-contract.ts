// The store contract: what the upload pipeline relies on from any store (server/backends/store/
// upload-store.ts), run against each store the same way. Bodies cross the S3 store's 5 MiB parts at
// odd places, as a network delivers them.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ERRORS as TUS_ERRORS, Upload } from '@tus/utils';
import { requestChecksum } from '../../server/hashing/checksum.ts';
import type { UploadStore } from '../../server/backends/store/upload-store.ts';
import { crc32, md5, patternBytes, sha1 } from './files.ts';

/** A body delivered in pieces of uneven size. */
export const pieces = (b: Buffer, size = 300_001): Readable => {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length; at += size) out.push(b.subarray(at, at + size));
  return Readable.from(out);
};

/** A body whose connection goes after `bytes`. */
export async function* cutAfter(b: Buffer, bytes: number): AsyncGenerator<Buffer> {
  yield* pieces(b.subarray(0, bytes));
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

const MIB = 2 ** 20;
let next = 0;
const newId = (name: string) => `${name}-${process.pid}-${++next}`;

/** The suite, its tests named `<store>: …`. `make` gives a store (a fresh one each time: as after a restart). */
export function storeContract(name: string, make: () => Promise<UploadStore> | UploadStore): void {
  test(`${name}: creation, appends across part boundaries and a restart, digests of every byte`, async () => {
    const bytes = patternBytes(13 * MIB + 12_345, 2);
    const id = newId('appends');
    let store = await make();
    await store.create(
      new Upload({
        id,
        size: bytes.length,
        offset: 0,
        metadata: { filename: 'a b.bin', filetype: 'application/octet-stream' },
      }),
    );
    const fresh = await store.getUpload(id);
    assert.equal(fresh.offset, 0);
    assert.equal(fresh.size, bytes.length);
    assert.equal(fresh.metadata?.filename, 'a b.bin');
    const cuts = [0, 3 * MIB + 7, 9 * MIB + 1, bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      store = await make();
      const result = await store.append(pieces(bytes.subarray(cuts[i]!, cuts[i + 1]!)), id, cuts[i]!, {
        size: bytes.length,
      });
      assert.deepEqual(result, { offset: cuts[i + 1]!, exceeded: false });
      assert.equal((await store.getUpload(id)).offset, cuts[i + 1]);
      assert.equal((await store.written(id))?.size, cuts[i + 1]);
    }
    assert.deepEqual(await store.digests(id, bytes.length), {
      md5: md5(bytes),
      sha1: sha1(bytes),
      crc32: crc32(bytes),
      size: bytes.length,
    });
    assert.ok(store.location(id).endsWith(id), store.location(id));
  });

  test(`${name}: a body that does not match its checksum leaves nothing; the next one continues`, async () => {
    const bytes = patternBytes(6 * MIB + 3, 3);
    const id = newId('checksum');
    const store = await make();
    await store.create(new Upload({ id, size: bytes.length, offset: 0, metadata: {} }));
    const first = bytes.subarray(0, 5 * MIB + 100);
    const wrong = await requestChecksum(`md5 ${Buffer.from(md5('other'), 'hex').toString('base64')}`);
    await assert.rejects(
      store.append(pieces(first), id, 0, { size: bytes.length, checksum: wrong }),
      /ERR_CHECKSUM_MISMATCH|460|Checksum/,
    );
    assert.equal((await store.getUpload(id)).offset, 0);
    const right = await requestChecksum(`md5 ${Buffer.from(md5(first), 'hex').toString('base64')}`);
    assert.equal(
      (await store.append(pieces(first), id, 0, { size: bytes.length, checksum: right })).offset,
      first.length,
    );
    await store.append(pieces(bytes.subarray(first.length)), id, first.length, { size: bytes.length });
    assert.equal((await store.digests(id, bytes.length)).md5, md5(bytes));
  });

  test(`${name}: deferred length, declared by a later request, completes the upload`, async () => {
    const bytes = patternBytes(5 * MIB + 777, 4);
    const id = newId('deferred');
    const store = await make();
    await store.create(new Upload({ id, offset: 0, metadata: {} }));
    assert.equal((await store.getUpload(id)).size, undefined);
    await store.append(pieces(bytes.subarray(0, 1000)), id, 0);
    await store.append(pieces(bytes.subarray(1000)), id, 1000);
    assert.equal((await store.getUpload(id)).size, undefined);
    await store.declareUploadLength(id, bytes.length);
    const done = await store.getUpload(id);
    assert.equal(done.size, bytes.length);
    assert.equal(done.offset, bytes.length);
    assert.equal((await store.digests(id, bytes.length)).md5, md5(bytes));
  });

  test(`${name}: a body whose connection goes keeps what arrived, and the upload resumes from there`, async () => {
    const bytes = patternBytes(7 * MIB + 5, 5);
    const id = newId('cut');
    const store = await make();
    await store.create(new Upload({ id, size: bytes.length, offset: 0, metadata: {} }));
    const kept = 6 * MIB + 11;
    await assert.rejects(
      store.append(cutAfter(bytes, kept), id, 0, { size: bytes.length }),
      (e: { code?: string }) => e.code === 'ERR_UPLOAD_INTERRUPTED',
    );
    const after = (await make()).getUpload(id);
    assert.equal((await after).offset, kept);
    await store.append(pieces(bytes.subarray(kept)), id, kept, { size: bytes.length });
    assert.equal((await store.digests(id, bytes.length)).md5, md5(bytes));
  });

  test(`${name}: a body past the length is cut at it (exceeded), the bytes up to it kept`, async () => {
    const bytes = patternBytes(1000, 6);
    const id = newId('limit');
    const store = await make();
    await store.create(new Upload({ id, size: 600, offset: 0, metadata: {} }));
    assert.deepEqual(await store.append(pieces(bytes, 128), id, 0, { size: 600, limit: 600 }), {
      offset: 600,
      exceeded: true,
    });
    assert.equal((await store.digests(id, 600)).md5, md5(bytes.subarray(0, 600)));
  });

  test(`${name}: an empty upload is complete at once; removal makes any upload not found`, async () => {
    const store = await make();
    const empty = newId('empty');
    await store.create(new Upload({ id: empty, size: 0, offset: 0, metadata: {} }));
    assert.equal((await store.getUpload(empty)).offset, 0);
    assert.equal((await store.digests(empty, 0)).md5, md5(Buffer.alloc(0)));
    const id = newId('removed');
    await store.create(new Upload({ id, size: 10 * MIB, offset: 0, metadata: {} }));
    await store.append(pieces(patternBytes(5 * MIB + 9, 7)), id, 0, { size: 10 * MIB });
    await store.remove(id);
    await assert.rejects(
      store.getUpload(id),
      (e) => e === TUS_ERRORS.FILE_NOT_FOUND || (e as { status_code?: number }).status_code === 404,
    );
    assert.equal(await store.written(id), undefined);
  });
}
