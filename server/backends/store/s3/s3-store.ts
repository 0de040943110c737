// The S3 store (S3_BUCKET): each upload is a multipart upload in the bucket, its parts sent while the
// bytes arrive (s3-append.ts), its record beside it (s3-record.ts). Nothing is kept on this machine
// but what one append holds in memory: any instance with the bucket serves any request of an upload.
//
// Why not @tus/s3-store: it buffers every part in a temporary file on local disk before sending it
// (measured on this machine behind @tus/server: 22 MB/s against 77 MB/s for the same bucket's
// multipart upload), it knows nothing of digests (md5 while bytes arrive, with the state kept across
// requests, is the point of tuspass), and its part size grows only with the length it is told.
import type { S3Client } from '@aws-sdk/client-s3';
import { loadPresigner, sdk } from './s3-sdk.ts';
import type { Readable } from 'node:stream';
import { DataStore, ERRORS as TUS_ERRORS, Upload } from '@tus/utils';
import type { DigestName, Digests } from '../../../../core/wire.ts';
import { errorText, type Log } from '../../../../core/logger.ts';
import { DigestState } from '../../../hashing/digest-state.ts';
import type { WriteFence } from '../../locker/redis-locker.ts';
import { storedInfo, UploadOwners, type BodyInfo, type ConcatInfo, type NewUploadInfo } from '../stored-info.ts';
import type { AppendOptions, AppendResult } from '../append.ts';
import { idTaken } from '../new-upload.ts';
import { expiresAt, type ExpiryPeriods } from '../stored-upload.ts';
import type { UploadStore, WrittenBytes } from '../upload-store.ts';
import { MAX_OBJECT, MAX_PARTS, partSize } from './part-size.ts';
import { appendParts, completeObject, objectHeaders, objectStoreFailure, type S3AppendDeps } from './s3-append.ts';
import { openObject, type OpenObject } from './s3-object.ts';
import { readRecord, recordOffset, S3Keys, writeRecord, type S3Record } from './s3-record.ts';

export interface S3StoreOptions {
  s3: S3Client;
  bucket: string;
  /** S3_PREFIX. */
  prefix: string;
  algorithms: readonly DigestName[];
  /** S3_PART_SIZE. */
  partSize: number;
  /** S3_EQUAL_PARTS. */
  equalParts: boolean;
  /** S3_PARTS_IN_FLIGHT. */
  partsInFlight: number;
  /** S3_DOWNLOAD_REDIRECT in ms; 0: downloads stream through tuspass. */
  downloadRedirectMs?: number;
  expirationPeriodInMilliseconds?: number;
  unstartedExpirationMs?: number;
  extensions?: string[];
  log?: Log;
}

const notFound = (): never => {
  throw TUS_ERRORS.FILE_NOT_FOUND;
};

export class S3UploadStore extends DataStore implements UploadStore {
  readonly algorithms: readonly DigestName[];
  readonly expiry: ExpiryPeriods;
  readonly bucket: string;
  private readonly s3: S3Client;
  private readonly keys: S3Keys;
  private readonly deps: S3AppendDeps;
  private readonly owners: UploadOwners;
  private readonly log: Log;
  private readonly expirationMs: number;
  private readonly downloadRedirectMs: number;

  constructor(options: S3StoreOptions) {
    super();
    this.s3 = options.s3;
    this.bucket = options.bucket;
    this.keys = new S3Keys(options.prefix);
    this.algorithms = options.algorithms;
    this.expirationMs = options.expirationPeriodInMilliseconds ?? 0;
    this.downloadRedirectMs = options.downloadRedirectMs ?? 0;
    this.expiry = { afterLastWrite: this.expirationMs, unstarted: options.unstartedExpirationMs ?? 0 };
    this.extensions = options.extensions ?? [
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'termination',
      'expiration',
    ];
    this.log = options.log ?? (() => {});
    this.deps = {
      s3: this.s3,
      bucket: this.bucket,
      keys: this.keys,
      algorithms: this.algorithms,
      minPartSize: options.partSize,
      equalParts: options.equalParts,
      partsInFlight: options.partsInFlight,
    };
    this.owners = new UploadOwners({ get: async (id) => this.infoOf(await this.record(id)) });
  }

  /** With several instances (REDIS_URL): the lock every part and record write proves first (s3-append.ts). */
  set fence(fence: WriteFence | undefined) {
    this.deps.fence = fence;
  }

  override getExpiration(): number {
    return this.expirationMs;
  }

  /** The completion form's `.path`: the object's URL. */
  location(id: string): string {
    return `s3://${this.bucket}/${this.keys.object(id)}`;
  }

  private record(id: string): Promise<S3Record | undefined> {
    return readRecord(this.s3, this.bucket, this.keys.record(id)).catch((e: unknown) => {
      throw objectStoreFailure(id, e);
    });
  }

  private async existing(id: string): Promise<S3Record> {
    return (await this.record(id)) ?? notFound();
  }

  private infoOf(record: S3Record | undefined): Upload | undefined {
    if (!record) return undefined;
    return new Upload({
      ...(record.info as Upload),
      offset: recordOffset(record),
      storage: { type: 's3', path: this.location(record.info.id) },
    });
  }

  concatOf(id: string): Promise<ConcatInfo | undefined> {
    return this.owners.concatOf(id);
  }

  ownerOf(id: string): Promise<string | undefined> {
    return this.owners.ownerOf(id, this.ownersCached());
  }

  accessOf(id: string): Promise<{ owner: string | undefined; segmented: boolean } | undefined> {
    return this.owners.accessOf(id, this.ownersCached());
  }

  /**
   * Another instance on the bucket (REDIS_URL) may remove an upload, and a pre-create hook there give
   * its id to someone else: an owner remembered here would let the old one in. Read from the record then.
   */
  private ownersCached(): { cached: boolean } {
    return { cached: this.deps.fence === undefined };
  }

  /**
   * A new multipart upload, Content-Type and Content-Disposition from the metadata (filetype,
   * filename), and its record. An id already in the bucket (a pre-create hook's choice) is refused.
   */
  override async create(upload: Upload, created: NewUploadInfo = {}): Promise<Upload> {
    const stored = storedInfo(upload, created);
    this.owners.forget(upload.id);
    if (upload.size !== undefined && upload.size > MAX_OBJECT) throw TUS_ERRORS.ERR_MAX_SIZE_EXCEEDED;
    const info: S3Record['info'] = {
      id: stored.id,
      size: stored.size,
      metadata: stored.metadata,
      creation_date: stored.creation_date,
      concat: stored.concat,
      owner: stored.owner,
      address: stored.address,
    };
    const Key = this.keys.object(upload.id);
    try {
      if (await this.record(upload.id)) throw idTaken(upload.id);
      const record: S3Record = {
        version: 1,
        info,
        partSize: partSize(this.deps.minPartSize, upload.size, 0, 0, this.deps.equalParts),
        parts: [],
        writtenAt: Date.now(),
      };
      const created = await this.s3.send(
        new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ...objectHeaders(record) }),
      );
      record.uploadId = created.UploadId;
      // An empty upload is complete at its creation.
      if (upload.size === 0) await completeObject(this.deps, upload.id, record);
      await writeRecord(this.s3, this.bucket, this.keys.record(upload.id), record);
    } catch (e) {
      throw objectStoreFailure(upload.id, e);
    }
    upload.storage = { type: 's3', path: this.location(upload.id) };
    return upload;
  }

  override async getUpload(id: string): Promise<Upload> {
    return this.infoOf(await this.existing(id))!;
  }

  /** DataStore's write: a plain append. */
  override async write(
    readable: Readable,
    id: string,
    offset: number,
    body: BodyInfo & { size?: number } = {},
  ): Promise<number> {
    return (await this.append(readable, id, offset, body)).offset;
  }

  /** Appends under the upload's lock (the routes hold it): the parts go to S3 while they arrive (s3-append.ts). */
  async append(
    source: AsyncIterable<Buffer>,
    id: string,
    offset: number,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const record = await this.existing(id);
    const at = recordOffset(record);
    if (at !== offset) throw TUS_ERRORS.INVALID_OFFSET;
    if (record.completed) return { offset: at, exceeded: false };
    return appendParts(this.deps, id, record, source, options);
  }

  /**
   * creation-defer-length. A length beyond what the parts can still hold (10,000 parts of the size
   * chosen: S3_EQUAL_PARTS keeps S3_PART_SIZE) is refused as too large. A length equal to the bytes
   * received completes the upload now (its tail becomes the last part).
   */
  override async declareUploadLength(id: string, size: number): Promise<void> {
    const record = await this.existing(id);
    const at = recordOffset(record);
    const sent = at - (record.tail?.size ?? 0);
    if (size > MAX_OBJECT) throw TUS_ERRORS.ERR_MAX_SIZE_EXCEEDED;
    if (this.deps.equalParts && size - sent > record.partSize * (MAX_PARTS - record.parts.length))
      throw TUS_ERRORS.ERR_MAX_SIZE_EXCEEDED;
    record.info.size = size;
    try {
      if (size === at) {
        if (record.tail) {
          // Sent as the last part through an append of nothing: the tail is read back into it.
          await writeRecord(this.s3, this.bucket, this.keys.record(id), record);
          await appendParts(this.deps, id, record, (async function* () {})(), {});
          return;
        }
        await completeObject(this.deps, id, record);
      }
      await writeRecord(this.s3, this.bucket, this.keys.record(id), record);
    } catch (e) {
      throw objectStoreFailure(id, e);
    }
  }

  /** The multipart upload aborted (or the object deleted), its tail and its record: every object of it goes. */
  override async remove(id: string): Promise<void> {
    const record = await this.existing(id);
    this.owners.forget(id);
    try {
      const Key = this.keys.object(id);
      if (record.uploadId && !record.completed) {
        await this.s3
          .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: record.uploadId }))
          .catch((e: unknown) => {
            // Aborted already (a remove that stopped half way): radosgw says NoSuchKey, AWS NoSuchUpload.
            const name = (e as { name?: string }).name;
            if (name !== 'NoSuchUpload' && name !== 'NoSuchKey') throw e;
          });
      }
      if (record.completed) await this.s3.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key }));
      // Every tail, also one a killed request wrote and never named in the record.
      const tails = await this.s3.send(
        new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.tails(id) }),
      );
      for (const tail of tails.Contents ?? [])
        await this.s3.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: tail.Key! }));
      await this.s3.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.keys.record(id) }));
    } catch (e) {
      throw objectStoreFailure(id, e);
    }
  }

  /** Unfinished uploads past their expiry go, their multipart uploads aborted (S3 would keep and bill their parts). */
  override async deleteExpired(): Promise<number> {
    if (this.expiry.afterLastWrite <= 0 && this.expiry.unstarted <= 0) return 0;
    let removed = 0;
    await this.eachRecord(async (id, record) => {
      if (record.completed) return;
      const at = expiresAt(record.info, { size: recordOffset(record), mtimeMs: record.writtenAt }, this.expiry);
      if (at === undefined || Date.now() <= at) return;
      try {
        await this.remove(id);
        removed++;
      } catch (e) {
        this.log(`expiry: upload ${id} could not be removed: ${errorText(e)}`, { level: 'warn' });
      }
    });
    return removed;
  }

  async digests(id: string, offset: number): Promise<Digests> {
    const record = await this.existing(id);
    const state = record.digest
      ? await DigestState.fromSnapshot(record.digest, this.algorithms)
      : await DigestState.fresh(this.algorithms);
    if (!state || state.offset !== offset) {
      state?.release();
      throw objectStoreFailure(id, new Error(`no digest state at ${offset}`));
    }
    try {
      return await state.digests();
    } finally {
      state.release();
    }
  }

  async written(id: string): Promise<WrittenBytes | undefined> {
    const record = await this.record(id);
    return record && { size: recordOffset(record), mtimeMs: record.writtenAt };
  }

  /**
   * S3_DOWNLOAD_REDIRECT: a presigned GetObject URL of the finished object, valid that long (the
   * signature is made here, no request to S3); undefined when downloads stream through tuspass.
   */
  async downloadUrl(id: string): Promise<string | undefined> {
    if (this.downloadRedirectMs <= 0) return undefined;
    const { getSignedUrl } = await loadPresigner();
    return getSignedUrl(this.s3, new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.keys.object(id) }), {
      expiresIn: Math.ceil(this.downloadRedirectMs / 1000),
    });
  }

  /** The finished object, read by range as the client asks (s3-object.ts). */
  async openFinished(id: string): Promise<OpenObject> {
    const opened = await openObject(this.s3, this.bucket, this.keys.object(id)).catch((e: unknown) => {
      throw objectStoreFailure(id, e);
    });
    return opened ?? notFound();
  }

  /** The object's size as S3 has it (HeadObject): what the completion service checks instead of a path. */
  async objectSize(id: string): Promise<number | undefined> {
    try {
      return (await this.s3.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.keys.object(id) })))
        .ContentLength;
    } catch (e) {
      if ((e as { name?: string }).name === 'NotFound') return undefined;
      throw e;
    }
  }

  /** For /readyz: the bucket answers (HeadBucket). */
  async ready(): Promise<{ ok: boolean; reason?: string }> {
    try {
      await this.s3.send(new sdk.HeadBucketCommand({ Bucket: this.bucket }));
      return { ok: true };
    } catch (e) {
      return {
        ok: false,
        reason: `the bucket (S3_BUCKET) does not answer (${(e as { name?: string }).name ?? 'error'}): no upload can \
be written`,
      };
    }
  }

  /** Noted in the record (which stays: HEAD answers a finished upload from it), so no start announces it again. */
  async completionHandled(id: string): Promise<void> {
    const record = await this.record(id);
    if (!record || record.handled) return;
    await writeRecord(this.s3, this.bucket, this.keys.record(id), { ...record, handled: true }).catch((e: unknown) => {
      throw objectStoreFailure(id, e);
    });
  }

  /**
   * At start: finished uploads whose completion was never handled (the process stopped between the
   * last byte and the form), to announce again. The completion service drops a repeated form by
   * upload id.
   */
  async awaitingCompletion(): Promise<string[]> {
    const found: string[] = [];
    await this.eachRecord((id, record) => {
      if (record.completed && !record.handled) found.push(id);
    });
    return found;
  }

  /** Every upload's record under S3_PREFIX. */
  private async eachRecord(visit: (id: string, record: S3Record) => void | Promise<void>): Promise<void> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.prefix, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        const id = object.Key && this.keys.idOfRecord(object.Key);
        if (!id) continue;
        const record = await this.record(id).catch(() => undefined);
        if (record) await visit(id, record);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async settled(_id: string): Promise<void> {}
}
