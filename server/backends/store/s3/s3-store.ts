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
import { LRUCache } from 'lru-cache';
import type { DigestName, Digests } from '../../../../core/wire.ts';
import { ERRORS, TuspassError } from '../../../../core/errors.ts';
import { errorText, type Log } from '../../../../core/logger.ts';
import { DigestState } from '../../../hashing/digest-state.ts';
import type { Claims } from '../../locker/claims.ts';
import type { WriteFence } from '../../locker/redis-locker.ts';
import { CompletionClaims } from '../completion-claims.ts';
import { storedInfo, UploadOwners, type BodyInfo, type ConcatInfo, type NewUploadInfo } from '../stored-info.ts';
import type { AppendOptions, AppendResult } from '../append.ts';
import { idTaken } from '../new-upload.ts';
import { SpaceLedger, type OwnerLimits } from '../space-ledger.ts';
import { storedOwnerKey } from '../../../auth/upload-owner.ts';
import { expiresAt, type ExpiryPeriods } from '../stored-upload.ts';
import type { UploadStore, WrittenBytes } from '../upload-store.ts';
import { MAX_OBJECT, MAX_PARTS, partSize } from './part-size.ts';
import { appendParts, completeObject, objectHeaders, objectStoreFailure, type S3AppendDeps } from './s3-append.ts';
import { objectBytes, openObject, type OpenObject } from './s3-object.ts';
import { concatenateParts } from '../concatenate.ts';
import { readRecord, recordOffset, S3Keys, writeNewRecord, writeRecord, type S3Record } from './s3-record.ts';

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
  /** S3_FORM_URL_TTL in ms; 0: the completion form carries no `.url`. */
  formUrlMs?: number;
  expirationPeriodInMilliseconds?: number;
  unstartedExpirationMs?: number;
  extensions?: string[];
  /** OWNER_MAX_OPEN, OWNER_MAX_OWED (a size: no disk's free space to take a share of). Default: no limits. */
  ownerLimits?: OwnerLimits;
  log?: Log;
}

/** Handled records remembered by the completion sweep (seenHandled). */
const SEEN_HANDLED = 100_000;

const notFound = (): never => {
  throw TUS_ERRORS.FILE_NOT_FOUND;
};

export class S3UploadStore extends DataStore implements UploadStore {
  readonly algorithms: readonly DigestName[];
  readonly expiry: ExpiryPeriods;
  readonly bucket: string;
  /**
   * The per-owner limits: every creation, declared length and append is admitted and counted there
   * (space-ledger.ts). No disk holds the uploads, so it refuses nothing for space.
   */
  readonly space: SpaceLedger;
  private readonly s3: S3Client;
  private readonly keys: S3Keys;
  private readonly deps: S3AppendDeps;
  private readonly owners: UploadOwners;
  private readonly log: Log;
  private readonly expirationMs: number;
  private readonly downloadRedirectMs: number;
  private readonly formUrlMs: number;
  /** Whose each finished upload's completion is, with several instances (completion-claims.ts). */
  private readonly completions: CompletionClaims;
  /**
   * Records seen noted handled, by id, with their ETag: a sweep reads only the records that changed
   * since. The most recent SEEN_HANDLED (about 15 MB); a bucket with more has the others read again.
   */
  private readonly seenHandled = new LRUCache<string, string>({ max: SEEN_HANDLED });
  /**
   * File parts of the multipart requests running here: marked unfinished until their form goes, yet no
   * expiry of theirs while the request writes its other parts or runs its pre-finish hooks.
   */
  private readonly requestRunning = new Set<string>();

  constructor(options: S3StoreOptions) {
    super();
    this.s3 = options.s3;
    this.bucket = options.bucket;
    this.keys = new S3Keys(options.prefix);
    this.algorithms = options.algorithms;
    this.expirationMs = options.expirationPeriodInMilliseconds ?? 0;
    this.downloadRedirectMs = options.downloadRedirectMs ?? 0;
    this.formUrlMs = options.formUrlMs ?? 0;
    this.expiry = { afterLastWrite: this.expirationMs, unstarted: options.unstartedExpirationMs ?? 0 };
    this.extensions = options.extensions ?? [
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'termination',
      'expiration',
    ];
    this.log = options.log ?? (() => {});
    this.space = new SpaceLedger(undefined, 0, this.log, options.ownerLimits);
    this.completions = new CompletionClaims(this.log);
    this.deps = {
      s3: this.s3,
      bucket: this.bucket,
      keys: this.keys,
      algorithms: this.algorithms,
      minPartSize: options.partSize,
      equalParts: options.equalParts,
      partsInFlight: options.partsInFlight,
    };
    // The record's info as it is: an Upload made of it (infoOf) keeps no owner and no concatenation role.
    this.owners = new UploadOwners({ get: async (id) => (await this.record(id))?.info as Upload | undefined });
  }

  /** With several instances (REDIS_URL): the lock every part and record write proves first (s3-append.ts). */
  set fence(fence: WriteFence | undefined) {
    this.deps.fence = fence;
  }

  /**
   * With several instances (REDIS_URL): the instance whose write completes an upload claims its
   * completion until its record is noted handled; another instance's sweep takes it over only once
   * that claim's lease ended (completion-sweep.ts).
   */
  set claims(claims: Claims | undefined) {
    this.completions.claims = claims;
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
    // Segments of the nginx module's resumable mode are written at any offset: a multipart upload's
    // parts only in order (docs/s3-store.md). Its route is refused on S3 before it gets here.
    if (created.resumable === true) throw new TuspassError(ERRORS.ERR_NOT_ON_S3, 'an upload written in segments');
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
      resumable: stored.resumable,
    };
    const Key = this.keys.object(upload.id);
    // Admitted (the owner's limits) and counted from now on, in one step, as on the file store.
    await this.space.open(upload.id, storedOwnerKey(stored), upload.size);
    /** Another upload has the id: the ledger's entry under it is that upload's, counted again below. */
    let taken = false;
    /** The multipart upload made for this creation, until a record names it. */
    let unnamed: string | undefined;
    try {
      if (await this.record(upload.id)) {
        taken = true;
        throw idTaken(upload.id);
      }
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
      unnamed = created.UploadId;
      // The check above and this write are not one step: two creations a pre-create hook gave one id
      // at the same moment (on one instance or two) both pass the check. The record is written only
      // if none is there yet, which S3 decides: the other creation is refused and its multipart upload goes.
      if (!(await writeNewRecord(this.s3, this.bucket, this.keys.record(upload.id), record))) {
        await this.s3
          .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: record.uploadId }))
          .catch(() => undefined);
        unnamed = undefined;
        taken = true;
        throw idTaken(upload.id);
      }
      unnamed = undefined;
      // An empty upload is complete at its creation.
      if (upload.size === 0) {
        await completeObject(this.deps, upload.id, record);
        // Claimed before its record says so: no sweep takes over a completion this creation handles.
        await this.completions.completed(upload.id);
        await writeRecord(this.s3, this.bucket, this.keys.record(upload.id), record);
      }
    } catch (e) {
      // A record that could not be written (S3 failing): its multipart upload would stay open, unnamed.
      if (unnamed)
        await this.s3
          .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: unnamed }))
          .catch(() => undefined);
      this.space.forget(upload.id);
      // The other creation's upload, counted again as its record has it.
      if (taken) await this.restoreSpace(upload.id).catch(() => undefined);
      throw objectStoreFailure(upload.id, e);
    }
    upload.storage = { type: 's3', path: this.location(upload.id) };
    if (stored.resumable === 'multipart') this.requestRunning.add(upload.id);
    return upload;
  }

  /**
   * The multipart request that writes the upload is about to post its form: the mark goes from its
   * record, and from then on it is a finished upload like any other (announced at a start, or by
   * another instance's sweep, if its completion is never handled).
   */
  async settleSegments(id: string): Promise<void> {
    this.requestRunning.delete(id);
    const record = await this.existing(id);
    if (!record.info.resumable) return;
    const { resumable: _, ...info } = record.info;
    await writeRecord(this.s3, this.bucket, this.keys.record(id), { ...record, info }).catch((e: unknown) => {
      throw objectStoreFailure(id, e);
    });
    this.owners.forget(id);
    this.space.forget(id);
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
    // Bytes in the bucket are owed no more (the ledger follows the record as it is written).
    const onProgress = (position: number) => {
      this.space.progress(id, position);
      options.onProgress?.(position);
    };
    const result = await appendParts(this.deps, id, record, source, { ...options, onProgress });
    // Completed by this write, under the upload's lock: its completion is this instance's.
    if (result.offset === record.info.size) await this.completions.completed(id);
    return result;
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
    // Admitted like a creation (429 past the owner's OWNER_MAX_OWED); nothing changes when refused.
    await this.space.declare(id, size, at);
    record.info.size = size;
    try {
      if (size === at) {
        if (record.tail) {
          // Sent as the last part through an append of nothing: the tail is read back into it.
          await writeRecord(this.s3, this.bucket, this.keys.record(id), record);
          await appendParts(this.deps, id, record, (async function* () {})(), {});
        } else {
          await completeObject(this.deps, id, record);
          await writeRecord(this.s3, this.bucket, this.keys.record(id), record);
        }
        await this.completions.completed(id);
        return;
      }
      await writeRecord(this.s3, this.bucket, this.keys.record(id), record);
    } catch (e) {
      // Still of unknown length: owed nothing, as before.
      this.space.restore(id, storedOwnerKey(record.info), undefined, at);
      throw objectStoreFailure(id, e);
    }
  }

  /** Counts the upload in the ledger as its record in the bucket has it (gone or finished: not at all). */
  private async restoreSpace(id: string): Promise<void> {
    const record = await this.record(id);
    if (!record || record.completed) this.space.forget(id);
    else this.space.restore(id, storedOwnerKey(record.info), record.info.size, recordOffset(record));
  }

  /** The multipart upload aborted (or the object deleted), its tail and its record: every object of it goes. */
  override async remove(id: string): Promise<void> {
    // Out of the owners' counts first, as on the file store: a removal S3 then fails (S3 away) leaves
    // bytes for expiry, not an OWNER_MAX_OPEN place nobody can free — the uploads removed on a refusal
    // (a creation, a final, a multipart form) were never given to their client to DELETE.
    this.owners.forget(id);
    this.space.forget(id);
    this.requestRunning.delete(id);
    const record = await this.existing(id);
    await this.completions.release(id);
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
      // A multipart request's part is complete in the bucket before its request ends: unfinished until then.
      if ((record.completed && !record.info.resumable) || this.requestRunning.has(id)) return;
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
  downloadUrl(id: string): Promise<string | undefined> {
    return this.presignedGet(id, this.downloadRedirectMs);
  }

  /** S3_FORM_URL_TTL: the completion form's `<field>.url`, a presigned GetObject URL valid that long from now. */
  formUrl(id: string): Promise<string | undefined> {
    return this.presignedGet(id, this.formUrlMs);
  }

  /** A GetObject URL of the finished object signed for `ms` (made here, no request to S3); none for 0. */
  private async presignedGet(id: string, ms: number): Promise<string | undefined> {
    if (ms <= 0) return undefined;
    const { getSignedUrl } = await loadPresigner();
    return getSignedUrl(this.s3, new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.keys.object(id) }), {
      expiresIn: Math.ceil(ms / 1000),
    });
  }

  /**
   * The concatenation extension: the final's multipart upload made of the partials' objects, read
   * back whole, in order, as one append (s3-append.ts), which hashes them and cuts them into parts.
   *
   * Why not UploadPartCopy (S3 copying a partial's object into a part itself): the final's md5, sha1
   * and crc32 need every byte of the partials in order all the same (a digest of a concatenation
   * cannot be made from the partials' digests), so each partial is read once either way; a copy would
   * spare only sending the bytes back, and only for partials of 5 MiB or more (a part's least size
   * but the last's): the small partials clients mostly send would still have to be joined through
   * tuspass, with the parts' boundaries then set by the partials and no longer by S3_PART_SIZE and
   * S3_EQUAL_PARTS. One append serves every size, with the parts, the record's checkpoints and the
   * lock's fencing of any other append. Measured in test/s3-concat.test.ts (radosgw on this machine).
   */
  concatenate(finalId: string, parts: readonly string[], total: number): Promise<number> {
    return concatenateParts(
      parts,
      (id) =>
        objectBytes(this.s3, this.bucket, this.keys.object(id)).catch((e: unknown) => {
          throw objectStoreFailure(id, e);
        }),
      async (source) => (await this.append(source, finalId, 0, { size: total })).offset,
    );
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
    // Finished: owed nothing, no longer open.
    this.space.forget(id);
    const record = await this.record(id);
    if (record && !record.handled)
      await writeRecord(this.s3, this.bucket, this.keys.record(id), { ...record, handled: true }).catch(
        (e: unknown) => {
          throw objectStoreFailure(id, e);
        },
      );
    // Noted in the bucket: no instance takes it over now, the claim may go.
    await this.completions.release(id);
  }

  /**
   * At start: finished uploads whose completion was never handled (the process stopped between the
   * last byte and the form), to announce again. The completion service drops a repeated form by
   * upload id. The unfinished ones are entered in the ledger (what they are owed, their owners'
   * totals), as the file store's start pass does. A file part of a multipart request still marked
   * belongs to a request the process stopped in the middle of: its form was never posted and its
   * client never answered, so nobody finishes it. It is removed (with several instances on the bucket
   * it may be a request running on another: kept, unfinished, for that request or its expiry).
   */
  async awaitingCompletion(): Promise<string[]> {
    const dead: string[] = [];
    const found = await this.finishedUnhandled((id, record) => {
      if (record.info.resumable && !this.deps.fence) dead.push(id);
      else this.space.restore(id, storedOwnerKey(record.info), record.info.size, recordOffset(record));
    });
    for (const id of dead) {
      await this.remove(id).then(
        () =>
          this.log(`upload ${id}: a part of a multipart request that never finished (the process stopped): removed`),
        (e: unknown) =>
          this.log(`upload ${id}: a part of a dead multipart request: ${errorText(e)}`, { level: 'warn' }),
      );
    }
    return found;
  }

  /**
   * For the completion sweep: the finished uploads whose records are not noted handled (read only: the
   * ledger follows the uploads being written, a sweep never enters them again).
   */
  unannounced(): Promise<string[]> {
    return this.finishedUnhandled();
  }

  /**
   * The finished uploads whose records are not noted handled; `unfinished` is shown each of the others
   * (a multipart request's part still marked among them: complete in the bucket, finished only once
   * its request posts the form).
   */
  private async finishedUnhandled(unfinished?: (id: string, record: S3Record) => void): Promise<string[]> {
    const found: string[] = [];
    await this.eachRecord(
      (id, record, etag) => {
        if (!record.completed || record.info.resumable) unfinished?.(id, record);
        else if (!record.handled) found.push(id);
        else if (etag) this.seenHandled.set(id, etag);
      },
      // A record seen handled stays so until it goes (an unhandled one never has the same bytes, nor ETag).
      (id, etag) => etag !== undefined && this.seenHandled.get(id) === etag,
    );
    return found;
  }

  /** For the completion sweep: this instance holds the completion now, its record still not noted handled. */
  takeOverCompletion(id: string): Promise<boolean> {
    return this.completions.takeOver(id, async () => {
      const record = await this.record(id);
      // Gone, or noted handled, or another upload under its id since, or a multipart request's part
      // its request still writes: nothing of this one to announce.
      return !(record?.completed && !record.handled && !record.info.resumable);
    });
  }

  /** Lets every completion claim go (a stopping instance): another instance's sweep takes them over. */
  releaseClaims(): Promise<void> {
    return this.completions.releaseAll();
  }

  /** Every upload's record under S3_PREFIX. */
  private async eachRecord(
    visit: (id: string, record: S3Record, etag?: string) => void | Promise<void>,
    skip?: (id: string, etag: string | undefined) => boolean,
  ): Promise<void> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.prefix, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        const id = object.Key && this.keys.idOfRecord(object.Key);
        if (!id || skip?.(id, object.ETag)) continue;
        const record = await this.record(id).catch(() => undefined);
        if (record) await visit(id, record, object.ETag);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** Announced (or gone): its completion claim goes. */
  async settled(id: string): Promise<void> {
    await this.completions.release(id);
  }
}
