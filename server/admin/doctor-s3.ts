// `tuspass doctor` with S3_BUCKET: the bucket answers and takes an object (one made and removed under
// S3_PREFIX, as the disk's write probe), and every upload's record agrees with what the bucket holds
// (store/s3/s3-inventory.ts): a record that is no record, a multipart upload gone, parts or a tail
// missing, a finished object gone or of another size are named with the upload's id.
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/config.ts';
import { s3ClientOf } from '../backends/store/s3/s3-client.ts';
import { bucketRecords, recordProblems } from '../backends/store/s3/s3-inventory.ts';
import { S3Keys } from '../backends/store/s3/s3-record.ts';
import { sdk } from '../backends/store/s3/s3-sdk.ts';
import type { Check } from './output.ts';

/** The inconsistent records a FAIL line names; the count says how many there are in all. */
const NAMED = 10;

const why = (e: unknown) => `${(e as { name?: string }).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`;

async function bucketCheck(s3: S3Client, config: Config, where: string): Promise<Check> {
  const Bucket = config.s3Bucket!;
  try {
    await s3.send(new sdk.HeadBucketCommand({ Bucket }));
  } catch (e) {
    return {
      check: 'bucket',
      ok: false,
      detail: `${where} does not answer (${why(e)})${config.s3Endpoint ? ` at ${config.s3Endpoint}` : ''}`,
      remedy:
        'check S3_BUCKET (the bucket must exist), S3_ENDPOINT, S3_REGION and the keys (S3_ACCESS_KEY_ID, ' +
        'S3_SECRET_ACCESS_KEY)',
    };
  }
  // Never an upload's name: upload ids hold no dot.
  const Key = `${config.s3Prefix}.doctor-probe-${process.pid}`;
  try {
    await s3.send(new sdk.PutObjectCommand({ Bucket, Key, Body: '' }));
    await s3.send(new sdk.DeleteObjectCommand({ Bucket, Key }));
  } catch (e) {
    return {
      check: 'bucket',
      ok: false,
      detail: `${where} answers but an object cannot be written and removed there (${why(e)})`,
      remedy: 'give the keys PutObject, DeleteObject and the multipart upload calls on the bucket (its policy)',
    };
  }
  return { check: 'bucket', ok: true, detail: `${where} answers, writable` };
}

async function recordsCheck(s3: S3Client, config: Config, where: string): Promise<Check> {
  const keys = new S3Keys(config.s3Prefix);
  const problems: string[] = [];
  const count = { unfinished: 0, finished: 0, awaiting: 0 };
  try {
    for await (const { id, key, record, unreadable } of bucketRecords(s3, config.s3Bucket!, keys)) {
      if (!record) {
        problems.push(`${key} is no upload record (${unreadable})`);
        continue;
      }
      if (record.completed) count.finished++;
      else count.unfinished++;
      if (record.completed && !record.handled) count.awaiting++;
      for (const problem of await recordProblems(s3, config.s3Bucket!, keys, record))
        problems.push(`upload ${id}: ${problem}`);
    }
  } catch (e) {
    return {
      check: 'S3 uploads',
      ok: false,
      detail: `the records in ${where} could not be read (${why(e)})`,
      remedy: 'give the keys ListBucket, GetObject and ListMultipartUploadParts on the bucket',
    };
  }
  const total = count.finished + count.unfinished;
  const counts =
    `${total} upload record(s): ${count.unfinished} unfinished, ${count.finished} finished` +
    (count.awaiting ? ` (${count.awaiting} not announced yet: the next start or sweep announces them)` : '');
  if (!problems.length) return { check: 'S3 uploads', ok: true, detail: `${counts} in ${where}, consistent` };
  return {
    check: 'S3 uploads',
    ok: false,
    detail:
      `${problems.length} inconsistent in ${where} (${counts}): ${problems.slice(0, NAMED).join('; ')}` +
      (problems.length > NAMED ? `; and ${problems.length - NAMED} more` : ''),
    remedy:
      'such an upload cannot be continued: remove it (DELETE /files/<id>, which takes what is left of it), or ' +
      'its objects under S3_PREFIX; a bucket lifecycle rule that aborts multipart uploads must allow longer than ' +
      'EXPIRE_AFTER',
  };
}

/** The bucket's checks, in place of the disk's free space. */
export async function s3Checks(config: Config): Promise<Check[]> {
  const where = `s3://${config.s3Bucket}/${config.s3Prefix}`;
  const s3 = await s3ClientOf(config);
  try {
    const bucket = await bucketCheck(s3, config, where);
    return bucket.ok ? [bucket, await recordsCheck(s3, config, where)] : [bucket];
  } finally {
    s3.destroy();
  }
}
