// What the bucket holds under S3_PREFIX, as the admin commands read it (`tuspass uploads list`,
// `tuspass doctor`): every upload's record, those that are no record named with the reason, and what
// in the bucket disagrees with a record (a multipart upload gone, a part or tail missing, an object
// of another size). Reads only; nothing is repaired here (DELETE /files/<id> removes what is left).
import type { S3Client } from '@aws-sdk/client-s3';
import { sdk } from './s3-sdk.ts';
import { recordOffset, type S3Keys, type S3Record } from './s3-record.ts';

export interface StoredRecord {
  id: string;
  /** The record's key in the bucket. */
  key: string;
  /** Undefined when the object is no record this version reads (`unreadable` says why). */
  record?: S3Record;
  unreadable?: string;
  /** When the record was last written, as S3 has it. */
  modified?: Date;
}

/** Why a record's text is none, or undefined when it reads as one. */
function notARecord(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const r = value as Partial<S3Record>;
  if (r.version !== 1) return `version ${JSON.stringify(r.version)}, not 1`;
  if (typeof r.info !== 'object' || r.info === null || typeof r.info.id !== 'string') return 'no upload info';
  if (!Array.isArray(r.parts) || r.parts.some((p) => !Number.isSafeInteger(p?.size) || typeof p?.ETag !== 'string'))
    return 'no list of parts';
  if (r.tail !== undefined && (typeof r.tail?.key !== 'string' || !Number.isSafeInteger(r.tail.size)))
    return 'a tail without key or size';
  return undefined;
}

/** Every upload's record under the prefix, page by page (ListObjectsV2), each read once. */
export async function* bucketRecords(s3: S3Client, bucket: string, keys: S3Keys): AsyncGenerator<StoredRecord> {
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(
      new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: keys.prefix, ContinuationToken }),
    );
    for (const object of page.Contents ?? []) {
      const id = object.Key && keys.idOfRecord(object.Key);
      if (!id) continue;
      const entry: StoredRecord = { id, key: object.Key!, modified: object.LastModified };
      try {
        const got = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: object.Key }));
        const text = await got.Body!.transformToString();
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          value = undefined;
        }
        entry.unreadable = value === undefined ? 'not JSON' : notARecord(value);
        if (!entry.unreadable) entry.record = value as S3Record;
      } catch (e) {
        // Listed, then gone (removed meanwhile): not there.
        if ((e as { name?: string }).name === 'NoSuchKey') continue;
        throw e;
      }
      yield entry;
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
}

const gone = (e: unknown) => ['NoSuchUpload', 'NoSuchKey', 'NotFound'].includes((e as { name?: string }).name ?? '');

/** The object's size, or undefined when there is none. */
async function sizeOf(s3: S3Client, bucket: string, key: string): Promise<number | undefined> {
  try {
    return (await s3.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength ?? 0;
  } catch (e) {
    if (gone(e)) return undefined;
    throw e;
  }
}

/**
 * What in the bucket disagrees with an upload's record: a finished upload whose object is gone or of
 * another size; an unfinished one without its multipart upload, with parts S3 does not hold (ListParts),
 * or whose tail object is gone or of another size. Empty when all agree.
 */
export async function recordProblems(s3: S3Client, bucket: string, keys: S3Keys, record: S3Record): Promise<string[]> {
  const id = record.info.id;
  const problems: string[] = [];
  const offset = recordOffset(record);
  if (record.completed) {
    const size = await sizeOf(s3, bucket, keys.object(id));
    if (size === undefined) problems.push('finished, but its object is gone');
    else if (size !== offset) problems.push(`finished, but its object holds ${size} bytes, the record ${offset}`);
    return problems;
  }
  if (!record.uploadId) problems.push('unfinished, but the record names no multipart upload');
  else {
    const held = new Map<number, string>();
    try {
      let PartNumberMarker: string | undefined;
      do {
        const page = await s3.send(
          new sdk.ListPartsCommand({
            Bucket: bucket,
            Key: keys.object(id),
            UploadId: record.uploadId,
            PartNumberMarker,
          }),
        );
        for (const part of page.Parts ?? []) held.set(part.PartNumber!, part.ETag!);
        PartNumberMarker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (PartNumberMarker);
      const missing = record.parts.filter((p) => held.get(p.PartNumber) !== p.ETag).map((p) => p.PartNumber);
      if (missing.length) problems.push(`part(s) ${missing.join(', ')} of its record are not in its multipart upload`);
    } catch (e) {
      if (!gone(e)) throw e;
      problems.push(`its multipart upload ${record.uploadId} is gone (aborted, or removed by a lifecycle rule)`);
    }
  }
  if (record.tail) {
    const size = await sizeOf(s3, bucket, record.tail.key);
    if (size === undefined) problems.push(`its tail ${record.tail.key} is gone`);
    else if (size !== record.tail.size) problems.push(`its tail holds ${size} bytes, the record ${record.tail.size}`);
  }
  return problems;
}
