// The record of one upload in the bucket, beside its bytes: `<prefix><id>.info`, a small JSON object
// written whole (a PutObject is atomic: a reader sees the old record or the new one). It holds what
// the file store keeps in its .json and .digest files: the upload's info, its multipart upload, the
// parts sent and their ETags, the bytes not yet in a part (the tail object) and the digest state at
// exactly the offset the parts and the tail make. Any instance reads it to continue the upload.
import type { S3Client } from '@aws-sdk/client-s3';
import { sdk } from './s3-sdk.ts';
import type { SavedState } from '../../../hashing/digest-state.ts';
import type { StoredInfo } from '../stored-info.ts';

export interface SentPart {
  PartNumber: number;
  ETag: string;
  size: number;
}

export interface S3Record {
  version: 1;
  /**
   * The upload's info as the file store keeps it (id, size, metadata, creation_date, owner, concat),
   * and the mark of a multipart request's file part until its request posts the form (StoredInfo.resumable).
   */
  info: Pick<StoredInfo, 'id' | 'size' | 'metadata' | 'creation_date' | 'concat' | 'owner' | 'address' | 'resumable'>;
  /** The multipart upload's id; undefined once completed (or for an empty upload, put whole). */
  uploadId?: string;
  /** The part size chosen (store/s3/part-size.ts), kept so equal parts stay equal. */
  partSize: number;
  parts: SentPart[];
  /** Bytes received after the last part, kept in their own object until a part takes them. */
  tail?: { key: string; size: number };
  /** The digest state over every byte of the parts and the tail. */
  digest?: SavedState;
  /** The object is complete (CompleteMultipartUpload answered). */
  completed?: boolean;
  /** Its completion was handled (hooks answered, form delivered or queued): not announced again at a start. */
  handled?: boolean;
  /** When the upload was last written to, ms since the epoch. */
  writtenAt: number;
}

/** The bytes a record accounts for: its parts and its tail. */
export const recordOffset = (r: S3Record): number => r.parts.reduce((n, p) => n + p.size, 0) + (r.tail?.size ?? 0);

/**
 * The object names of one upload under S3_PREFIX. Upload ids have no dot (core/wire.ts UPLOAD_ID), so
 * one upload's objects never take the names of another's (`<id>.info` is no id).
 */
export class S3Keys {
  constructor(readonly prefix: string) {}
  object(id: string): string {
    return `${this.prefix}${id}`;
  }
  record(id: string): string {
    return `${this.prefix}${id}.info`;
  }
  /**
   * A tail is named by the offset it ends at: a tail with more bytes never overwrites the one the
   * record names (a kill between the two writes would leave the record naming bytes that are gone).
   */
  tail(id: string, end: number): string {
    return `${this.tails(id)}${end}`;
  }
  /** What every tail of the upload's key starts with (removal lists them: a kill can leave one unnamed). */
  tails(id: string): string {
    return `${this.prefix}${id}.tail.`;
  }
  /** The id of a record's key, or undefined for the other objects. */
  idOfRecord(key: string): string | undefined {
    return key.startsWith(this.prefix) && key.endsWith('.info')
      ? key.slice(this.prefix.length, -'.info'.length)
      : undefined;
  }
}

export async function readRecord(s3: S3Client, bucket: string, key: string): Promise<S3Record | undefined> {
  try {
    const got = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
    const record = JSON.parse(await got.Body!.transformToString()) as S3Record;
    return record.version === 1 ? record : undefined;
  } catch (e) {
    if (e instanceof sdk.NoSuchKey || (e as { name?: string }).name === 'NoSuchKey') return undefined;
    // A record that is not JSON names no upload, as one of another version: answered as none (404),
    // as the file store answers an info file it cannot read. Read as S3 failing, it made HEAD answer
    // 423 for good and clients retry forever; `tuspass doctor` names it.
    if (e instanceof SyntaxError) return undefined;
    throw e;
  }
}

export async function writeRecord(
  s3: S3Client,
  bucket: string,
  key: string,
  record: S3Record,
  options: { onlyNew?: boolean } = {},
): Promise<void> {
  await s3.send(
    new sdk.PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(record),
      ContentType: 'application/json',
      ...(options.onlyNew && { IfNoneMatch: '*' }),
    }),
  );
}

/**
 * The first record of a new upload, written only if there is none under its key (a conditional
 * PutObject, If-None-Match: *, which S3 decides alone: of two writers at the same moment one wins).
 * False when a record is there. AWS answers 412 PreconditionFailed, or 409 ConditionalRequestConflict
 * while another conditional write of the key is under way; radosgw 16.2 answers 412.
 */
export async function writeNewRecord(s3: S3Client, bucket: string, key: string, record: S3Record): Promise<boolean> {
  try {
    await writeRecord(s3, bucket, key, record, { onlyNew: true });
    return true;
  } catch (e) {
    const { name, $metadata } = e as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (name === 'PreconditionFailed' || name === 'ConditionalRequestConflict') return false;
    if ($metadata?.httpStatusCode === 412 || $metadata?.httpStatusCode === 409) return false;
    throw e;
  }
}
