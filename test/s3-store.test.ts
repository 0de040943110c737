// The S3 store against a real S3 server (Ceph's radosgw, started for this file): the store contract
// run on it and on the file store alike, then what only S3 shows (the object, the multipart upload
// aborted, the part size).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { DigestFileStore } from '../server/backends/store/digest-store.ts';
import { MAX_PARTS, partSize } from '../server/backends/store/s3/part-size.ts';
import { S3UploadStore } from '../server/backends/store/s3/s3-store.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { startS3Server } from './helpers/s3-server.ts';
import { pieces, storeContract } from './helpers/store-contract.ts';
import { tmpDir } from './helpers/tmp.ts';

const ALL = ['md5', 'sha1', 'crc32'] as const;
const MIB = 2 ** 20;
const server = await startS3Server();
const skip = typeof server === 'string' ? server : false;

const fileDir = tmpDir({ after });
storeContract('file store', () => new DigestFileStore({ directory: fileDir, algorithms: ALL }));

const prefix = `contract-${process.pid}/`;
const s3Store = (over: Partial<ConstructorParameters<typeof S3UploadStore>[0]> = {}) => {
  if (typeof server === 'string') throw new Error(server);
  return new S3UploadStore({
    s3: server.client,
    bucket: server.bucket,
    prefix,
    algorithms: ALL,
    partSize: 5 * MIB,
    equalParts: false,
    partsInFlight: 3,
    ...over,
  });
};
if (skip) test(`S3 store: ${skip}`, { skip });
else storeContract('S3 store', () => s3Store());

test('S3 store: the finished object holds the bytes, with Content-Type and Content-Disposition from the metadata', {
  skip,
}, async () => {
  if (typeof server === 'string') return;
  const store = s3Store();
  const bytes = patternBytes(11 * MIB + 3, 9);
  const id = `object-${process.pid}`;
  await store.create(
    new Upload({
      id,
      size: bytes.length,
      offset: 0,
      metadata: { filename: 'résumé 1.pdf', filetype: 'application/pdf' },
    }),
  );
  await store.append(pieces(bytes, 1 * MIB + 17), id, 0, { size: bytes.length });
  assert.equal(store.location(id), `s3://${server.bucket}/${prefix}${id}`);
  const head = await server.client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: `${prefix}${id}` }));
  assert.equal(head.ContentLength, bytes.length);
  assert.equal(head.ContentType, 'application/pdf');
  assert.equal(head.ContentDisposition, "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf");
  const got = await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: `${prefix}${id}` }));
  assert.equal(md5(Buffer.from(await got.Body!.transformToByteArray())), md5(bytes));
  assert.equal(await store.objectSize(id), bytes.length);
});

test('S3 store: DELETE of an unfinished upload aborts its multipart upload (no parts left billed)', {
  skip,
}, async () => {
  if (typeof server === 'string') return;
  const store = s3Store();
  const id = `aborted-${process.pid}`;
  await store.create(new Upload({ id, size: 20 * MIB, offset: 0, metadata: {} }));
  await store.append(pieces(patternBytes(6 * MIB, 10)), id, 0, { size: 20 * MIB });
  const listed = async () =>
    (
      (await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: `${prefix}${id}` })))
        .Uploads ?? []
    ).length;
  assert.equal(await listed(), 1);
  await store.remove(id);
  assert.equal(await listed(), 0);
});

test('S3 store: equal parts keep S3_PART_SIZE; a deferred length beyond 10,000 of them is refused', {
  skip,
}, async () => {
  if (typeof server === 'string') return;
  const store = s3Store({ equalParts: true });
  const id = `equal-${process.pid}`;
  await store.create(new Upload({ id, offset: 0, metadata: {} }));
  await assert.rejects(store.declareUploadLength(id, 5 * MIB * MAX_PARTS + 1));
  await store.declareUploadLength(id, 5 * MIB * MAX_PARTS);
  await store.remove(id);
});

test('part size: no upload needs more than 10,000 parts; equal parts never change size', () => {
  assert.equal(partSize(8 * MIB, 1000), 8 * MIB);
  for (const length of [80_000 * MIB, 5 * 2 ** 40, 123_456_789_012]) {
    const size = partSize(8 * MIB, length);
    assert.ok(Math.ceil(length / size) <= MAX_PARTS, `${length}: ${size}`);
    assert.equal(size % MIB, 0);
  }
  // Deferred: the minimum, then grown for what is left once the length is known.
  assert.equal(partSize(8 * MIB, undefined), 8 * MIB);
  const later = partSize(8 * MIB, 200_000 * MIB, 9_000 * 8 * MIB, 9_000, false, 8 * MIB);
  assert.ok(Math.ceil((200_000 * MIB - 9_000 * 8 * MIB) / later) <= 1_000);
  assert.equal(partSize(8 * MIB, 200_000 * MIB, 0, 0, true, 8 * MIB), 8 * MIB);
});

test('S3 store: expiry aborts the multipart uploads of expired unfinished uploads and keeps the rest', {
  skip,
}, async () => {
  if (typeof server === 'string') return;
  const expiring = s3Store({
    prefix: `expiry-${process.pid}/`,
    unstartedExpirationMs: 1,
    expirationPeriodInMilliseconds: 60_000,
  });
  const unstarted = `unstarted-${process.pid}`;
  const started = `started-${process.pid}`;
  const finished = `finished-${process.pid}`;
  await expiring.create(
    new Upload({
      id: unstarted,
      size: 6 * MIB,
      offset: 0,
      metadata: {},
      creation_date: new Date(Date.now() - 1000).toISOString(),
    }),
  );
  await expiring.create(new Upload({ id: started, size: 6 * MIB, offset: 0, metadata: {} }));
  await expiring.append(pieces(patternBytes(1000, 11)), started, 0, { size: 6 * MIB });
  await expiring.create(
    new Upload({
      id: finished,
      size: 10,
      offset: 0,
      metadata: {},
      creation_date: new Date(Date.now() - 120_000).toISOString(),
    }),
  );
  await expiring.append(pieces(patternBytes(10, 12)), finished, 0, { size: 10 });
  const listed = async () =>
    (
      (
        await server.client.send(
          new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: `expiry-${process.pid}/` }),
        )
      ).Uploads ?? []
    )
      .map((u) => u.Key)
      .sort();
  assert.deepEqual(await listed(), [`expiry-${process.pid}/${started}`, `expiry-${process.pid}/${unstarted}`].sort());
  assert.equal(await expiring.deleteExpired(), 1);
  assert.deepEqual(await listed(), [`expiry-${process.pid}/${started}`]);
  await assert.rejects(expiring.getUpload(unstarted));
  assert.equal((await expiring.getUpload(started)).offset, 1000);
  assert.equal((await expiring.getUpload(finished)).offset, 10);
});

test('S3 store: each tail is a new object (a killed request never overwrites the one the record names), and removal \
takes unnamed tails too', {
  skip,
}, async () => {
  if (typeof server === 'string') return;
  const store = s3Store();
  const id = `tails-${process.pid}`;
  const bytes = patternBytes(3000, 13);
  await store.create(new Upload({ id, size: 10 * MIB, offset: 0, metadata: {} }));
  await store.append(pieces(bytes.subarray(0, 1000)), id, 0, { size: 10 * MIB });
  const objects = async () =>
    (
      (await server.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}${id}` })))
        .Contents ?? []
    )
      .map((o) => o.Key!)
      .sort();
  assert.deepEqual(await objects(), [`${prefix}${id}.info`, `${prefix}${id}.tail.1000`]);
  await store.append(pieces(bytes.subarray(1000)), id, 1000, { size: 10 * MIB });
  assert.deepEqual(await objects(), [`${prefix}${id}.info`, `${prefix}${id}.tail.3000`]);
  // What a request killed between its tail and its record leaves: a tail the record does not name.
  await server.client.send(
    new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}${id}.tail.9999`, Body: Buffer.alloc(10) }),
  );
  assert.equal((await store.getUpload(id)).offset, 3000);
  assert.equal((await store.digests(id, 3000)).md5, md5(bytes));
  await store.remove(id);
  assert.deepEqual(await objects(), []);
});
