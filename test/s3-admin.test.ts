// The admin commands with S3_BUCKET, as an operator runs them (`tuspass` child processes) against a
// real S3 server (Ceph's radosgw, started for this file): `uploads list` reads the uploads' records in
// the bucket, `doctor` checks the bucket answers and takes an object and names every record that
// disagrees with the bucket (garbage, a multipart upload gone, a tail or a finished object gone); a
// bucket that is not there fails both with the reason, never a stack trace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { md5, patternBytes } from './helpers/files.ts';
import { runTuspass } from './helpers/instances.ts';
import { s3Settings, s3StoreOn, startS3Server } from './helpers/s3-server.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { pieces } from './helpers/store-contract.ts';
import { tmpDir } from './helpers/tmp.ts';

const MIB = 2 ** 20;
const server = await startS3Server();
const skip = typeof server === 'string' ? server : false;
let n = 0;

/** A prefix of the test's own, the store on it (as a server writes it) and the commands' environment. */
function onPrefix() {
  if (typeof server === 'string') throw new Error(server);
  const prefix = `admin-${process.pid}-${++n}/`;
  const store = s3StoreOn(server, prefix, { expirationPeriodInMilliseconds: 3_600_000 });
  return { prefix, store, env: { ...server.env, S3_PREFIX: prefix, S3_PART_SIZE: '5MiB', EXPIRE_AFTER: '1h' } };
}

interface Row {
  id: string;
  size?: number;
  offset: number;
  finished: boolean;
  owner?: string;
  name?: string;
  expiresAt?: string;
}

test('uploads list with S3_BUCKET: the records in the bucket with offset, length, owner, name and expiry; \
--unfinished leaves the finished out', { skip }, async (t) => {
  const { store, env } = onPrefix();
  const whole = patternBytes(5 * MIB + 7, 1);
  await store.create(new Upload({ id: 'whole', size: whole.length, offset: 0, metadata: { filename: 'w.bin' } }), {
    owner: { sub: 'alice' },
  });
  await store.append(pieces(whole), 'whole', 0, { size: whole.length });
  // Half sent: one full part and a tail.
  await store.create(new Upload({ id: 'half', size: 12 * MIB, offset: 0, metadata: { filename: 'h.bin' } }), {
    owner: { sub: 'bob' },
  });
  await store.append(pieces(patternBytes(6 * MIB + 3, 2)), 'half', 0, { size: 12 * MIB });
  await store.create(new Upload({ id: 'deferred', offset: 0, metadata: {} }));

  const dataDir = tmpDir(t);
  const listed = await runTuspass(['uploads', 'list', '--json', '--data-dir', dataDir], env);
  assert.equal(listed.status, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as Row[];
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  assert.deepEqual(Object.keys(byId).sort(), ['deferred', 'half', 'whole']);
  assert.deepEqual(
    [byId.whole!.size, byId.whole!.offset, byId.whole!.finished, byId.whole!.owner, byId.whole!.name],
    [whole.length, whole.length, true, 'alice', 'w.bin'],
  );
  assert.equal(byId.whole!.expiresAt, undefined, 'a finished upload never expires');
  assert.deepEqual(
    [byId.half!.size, byId.half!.offset, byId.half!.finished, byId.half!.owner],
    [12 * MIB, 6 * MIB + 3, false, 'bob'],
  );
  const expires = Date.parse(byId.half!.expiresAt!) - Date.now();
  assert.ok(expires > 3_400_000 && expires <= 3_600_000, `expires in about an hour: ${byId.half!.expiresAt}`);
  assert.deepEqual([byId.deferred!.size, byId.deferred!.offset], [undefined, 0]);

  const open = await runTuspass(['uploads', 'list', '--unfinished', '--data-dir', dataDir], env);
  assert.equal(open.status, 0, open.stderr);
  assert.match(open.stdout, /^ID +SIZE +OFFSET +AGE +EXPIRES +OWNER +NAME$/m);
  assert.match(
    open.stdout,
    new RegExp(`^half +${12 * MIB} +${6 * MIB + 3} +\\d+s +\\S+ \\(in (59m \\d+s|1h 0m)\\) +bob +h\\.bin$`, 'm'),
  );
  assert.match(open.stdout, /^deferred +deferred +0 /m);
  assert.doesNotMatch(open.stdout, /^whole/m);

  const empty = await runTuspass(['uploads', 'list', '--data-dir', dataDir], {
    ...env,
    S3_PREFIX: `${env.S3_PREFIX}none/`,
  });
  assert.equal(empty.status, 0, empty.stderr);
  assert.match(empty.stdout, /^no uploads in s3:\/\/\S+\/admin-\d+-\d+\/none\/$/m);
});

test('doctor with S3_BUCKET: ok for a bucket that answers and takes an object, its records consistent; then names \
each record that disagrees with the bucket (garbage, multipart upload gone, tail gone, finished object gone) and \
exits 1', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const { prefix, store, env } = onPrefix();
  const bytes = patternBytes(5 * MIB + 11, 3);
  const make = async (id: string, size: number, sent: number) => {
    await store.create(new Upload({ id, size, offset: 0, metadata: {} }));
    if (sent) await store.append(pieces(bytes.subarray(0, sent)), id, 0, { size });
  };
  await make('fine', 10 * MIB, 5 * MIB + 11);
  await make('finished', 5 * MIB + 11, 5 * MIB + 11);
  const dataDir = tmpDir(t);
  const args = ['doctor', '--data-dir', dataDir, '--port', '0', '--completion-port', '0'];
  const healthy = await runTuspass(args, env);
  assert.equal(healthy.status, 0, healthy.stdout + healthy.stderr);
  assert.match(healthy.stdout, /^ok {4}bucket: s3:\/\/\S+ answers, writable$/m);
  assert.match(
    healthy.stdout,
    new RegExp(
      '^ok {4}S3 uploads: 2 upload record\\(s\\): 1 unfinished, 1 finished \\(1 not announced yet[^)]*\\) ' +
        'in s3://\\S+, consistent$',
      'm',
    ),
  );
  assert.doesNotMatch(healthy.stdout, /free space/, 'the disk admits no S3 upload');
  // The write probe is gone again.
  const listed = await server.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
  assert.ok(!(listed.Contents ?? []).some((o) => o.Key!.includes('doctor-probe')));

  // Broken in every way the bucket can disagree with a record.
  await make('aborted', 10 * MIB, 5 * MIB + 11);
  await make('tailless', 10 * MIB, 5 * MIB + 11);
  await make('objectless', 5 * MIB + 11, 5 * MIB + 11);
  const recordOf = async (id: string) =>
    JSON.parse(
      await (
        await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: `${prefix}${id}.info` }))
      ).Body!.transformToString(),
    ) as { uploadId: string; tail: { key: string } };
  await server.client.send(
    new AbortMultipartUploadCommand({
      Bucket: server.bucket,
      Key: `${prefix}aborted`,
      UploadId: (await recordOf('aborted')).uploadId,
    }),
  );
  await server.client.send(
    new DeleteObjectCommand({ Bucket: server.bucket, Key: (await recordOf('tailless')).tail.key }),
  );
  await server.client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `${prefix}objectless` }));
  await server.client.send(
    new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}garbage.info`, Body: '{"version":1,"info":' }),
  );
  await server.client.send(
    new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}stranger.info`, Body: '{"version":7}' }),
  );

  const sick = await runTuspass([...args, '--json'], env);
  assert.equal(sick.status, 1, sick.stdout + sick.stderr);
  const checks = JSON.parse(sick.stdout) as Array<{ check: string; ok: boolean; detail: string; remedy?: string }>;
  assert.equal(checks.find((c) => c.check === 'bucket')?.ok, true);
  const uploads = checks.find((c) => c.check === 'S3 uploads')!;
  assert.equal(uploads.ok, false);
  assert.match(uploads.detail, /^5 inconsistent in s3:\/\/\S+ \(5 upload record\(s\): 3 unfinished, 2 finished/);
  assert.match(uploads.detail, /upload aborted: its multipart upload \S+ is gone/);
  assert.match(uploads.detail, /upload tailless: its tail \S+\.tail\.\d+ is gone/);
  assert.match(uploads.detail, /upload objectless: finished, but its object is gone/);
  assert.match(uploads.detail, /garbage\.info is no upload record \(not JSON\)/);
  assert.match(uploads.detail, /stranger\.info is no upload record \(version 7, not 1\)/);
  assert.doesNotMatch(uploads.detail, /upload fine|upload finished:/);
  assert.match(uploads.remedy!, /DELETE \/files\/<id>/);

  // The list goes on past the garbage, naming it on stderr; its rows are the readable records'.
  const listing = await runTuspass(['uploads', 'list', '--json', '--data-dir', dataDir], env);
  assert.equal(listing.status, 0, listing.stderr);
  assert.equal((JSON.parse(listing.stdout) as Row[]).length, 5);
  assert.match(listing.stderr, /2 record\(s\) in s3:\/\/\S+ could not be read \(tuspass doctor names them\)/);

  // A server on this prefix starts past the garbage, announces the finished uploads and removes the broken ones.
  const s = await startTestServer(t, { ...s3Settings(server), s3Prefix: prefix });
  const records = await recordsWhenPresent(s.url, 1, 30_000);
  assert.deepEqual(
    records.map((r) => [r.upload_id, r.md5]),
    [['finished', md5(bytes)]],
    'the finished upload announced; the one whose object is gone is refused by the completion service',
  );
  const remove = (id: string) =>
    fetch(`${s.endpoint}${id}`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  for (const id of ['aborted', 'tailless']) assert.equal((await remove(id)).status, 204, id);
  // A record that is not JSON names no upload: 404, not a 423 that clients would retry for good.
  const garbage = await fetch(`${s.endpoint}garbage`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(garbage.status, 404);
  // Its form was refused (the object is gone: 422 ERR_FILE_MISSING), and a refused upload is removed.
  assert.equal((await remove('objectless')).status, 404);
  const after = await runTuspass([...args, '--json'], env);
  const left = (JSON.parse(after.stdout) as Array<{ check: string; detail: string }>).find(
    (c) => c.check === 'S3 uploads',
  )!;
  assert.match(left.detail, /^2 inconsistent .*: \S+garbage\.info is no upload record.*stranger\.info/);
});

test('a bucket that is not there: doctor fails naming the bucket and the settings to check; uploads list exits 1 \
with the reason, no stack trace', { skip }, async (t) => {
  const { env } = onPrefix();
  const gone = { ...env, S3_BUCKET: `vanished-${process.pid}` };
  const dataDir = tmpDir(t);
  const doctor = await runTuspass(['doctor', '--data-dir', dataDir, '--port', '0', '--completion-port', '0'], gone);
  assert.equal(doctor.status, 1, doctor.stdout + doctor.stderr);
  assert.match(doctor.stdout, /^FAIL {2}bucket: s3:\/\/vanished-\d+\/\S+ does not answer \((NotFound|NoSuchBucket)/m);
  assert.match(doctor.stdout, /→ check S3_BUCKET \(the bucket must exist\), S3_ENDPOINT/);
  assert.doesNotMatch(doctor.stdout, /S3 uploads/, 'no records read from a bucket that does not answer');
  const list = await runTuspass(['uploads', 'list', '--data-dir', dataDir], gone);
  assert.equal(list.status, 1, list.stdout + list.stderr);
  assert.match(list.stderr, /^tuspass uploads: s3:\/\/vanished-\d+\/\S+ could not be listed \(NoSuchBucket/m);
  assert.doesNotMatch(list.stderr, /\n\s+at /, 'no stack trace');
});
