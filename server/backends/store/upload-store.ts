// What the upload pipeline needs from a store, whichever keeps the bytes: the file store
// (digest-store.ts, a directory shared by the instances) or the S3 store (s3/s3-store.ts, multipart
// uploads in a bucket). The tus routes (creation, HEAD, PATCH, DELETE),
// the draft's routes, the access step, expiry and the completion depend on this, not on where bytes go.
//
// Each store computes the digests while the bytes arrive and keeps the digest state beside the
// upload, so a resumed upload (another request, another instance, after a restart) continues the
// hash instead of reading the bytes again.
import type { Readable } from 'node:stream';
import type { DataStore, Upload } from '@tus/utils';
import type { DigestName, Digests } from '../../../core/wire.ts';
import type { DownloadSource } from '../../http/download.ts';
import type { AppendOptions, AppendResult } from './append.ts';
import type { SpaceLedger } from './space-ledger.ts';
import type { BodyInfo, ConcatInfo, NewUploadInfo } from './stored-info.ts';
import type { ExpiryPeriods } from './stored-upload.ts';

export type { AppendOptions, AppendResult, BodyInfo, ConcatInfo, ExpiryPeriods, NewUploadInfo };

/** What a store says of an upload's bytes: how many it holds, and when it was last written (ms since the epoch). */
export interface WrittenBytes {
  size: number;
  mtimeMs: number;
}

/** A store that concatenates (UploadStore.concatenate). */
export type ConcatenatingStore = UploadStore & Required<Pick<UploadStore, 'concatenate'>>;

export const concatenates = (store: UploadStore): store is ConcatenatingStore =>
  typeof store.concatenate === 'function';

/** A DataStore (@tus/utils' store contract, which @tus/file-store's FileStore implements). */
export interface UploadStore extends DataStore {
  /** The digests computed on the way in besides md5 (md5 always). */
  readonly algorithms: readonly DigestName[];
  /** When unfinished uploads expire (store/stored-upload.ts expiresAt). */
  readonly expiry: ExpiryPeriods;
  /**
   * Who holds what of the store (space-ledger.ts): every creation, declared length and append of the
   * store is admitted there — the per-owner limits (OWNER_MAX_OPEN, OWNER_MAX_OWED) on every store,
   * free space where a disk holds the uploads. The creation gates ask it early (check()).
   */
  readonly space: SpaceLedger;

  // DataStore's calls. Every creation route hands the store what it knows of the new upload (its
  // owner, concatenation role, mark) with the creation; write is a plain append (the routes append
  // with append(), below).
  create(upload: Upload, info?: NewUploadInfo): Promise<Upload>;
  write(readable: Readable, id: string, offset: number, body?: BodyInfo & { size?: number }): Promise<number>;
  /**
   * The upload as stored: its offset, its length when known, its metadata. Throws @tus/utils' FILE_NOT_FOUND when there
   * is none.
   */
  getUpload(id: string): Promise<Upload>;
  /**
   * The upload and every byte and record of it go (an unfinished multipart upload is aborted). It leaves
   * the owners' counts (space-ledger.ts) before anything can fail.
   */
  remove(id: string): Promise<void>;
  /** creation-defer-length: the length, once and for all. */
  declareUploadLength(id: string, size: number): Promise<void>;
  /** Removes unfinished uploads past their expiry; returns how many went. */
  deleteExpired(): Promise<number>;
  /** EXPIRE_AFTER in ms (0: never). */
  getExpiration(): number;

  /**
   * Appends a body at `offset`, hashing it on the way. With `options.checksum`, nothing of a body
   * that does not match is kept. Throws what the error table says on a failure of the store.
   */
  append(source: AsyncIterable<Buffer>, id: string, offset: number, options?: AppendOptions): Promise<AppendResult>;
  /** The digests of the upload's bytes up to `offset` (all of them once it is finished). */
  digests(id: string, offset: number): Promise<Digests>;
  /** How many bytes the store holds of the upload and when it last wrote one (undefined: gone). */
  written(id: string): Promise<WrittenBytes | undefined>;
  /**
   * A finished upload's bytes, open for reading (a DELETE from then on does not cut a download
   * under way on the file store), with their size and last change. Throws ENOENT-like when gone.
   */
  openFinished(id: string): Promise<{ file: DownloadSource; size: number; modified: Date }>;
  /**
   * The concatenation extension, if the store offers it (as tusd's StoreComposer has a store say it
   * concatenates): builds the final upload `finalId`, created empty with length `total`, from the
   * finished partials in order, hashing the whole on the way; returns its offset. The caller holds
   * the partials' locks. A store without it: both kinds of concatenated creation are refused.
   */
  concatenate?(finalId: string, parts: readonly string[], total: number): Promise<number>;
  /** Where a client may fetch the finished upload's bytes itself (a presigned URL), if the store offers that. */
  downloadUrl?(id: string): Promise<string | undefined>;
  /**
   * A URL of the finished upload's bytes for the completion form's `<field>.url` (S3_FORM_URL_TTL: a
   * presigned URL), if the store offers one.
   */
  formUrl?(id: string): Promise<string | undefined>;
  /**
   * Where the finished upload's bytes are, as the completion form's `.path` says it: a file path, or s3://bucket/key.
   */
  location(id: string): string;

  // What the creation recorded (stored-info.ts).
  concatOf(id: string): Promise<ConcatInfo | undefined>;
  ownerOf(id: string): Promise<string | undefined>;
  accessOf(id: string): Promise<{ owner: string | undefined; segmented: boolean } | undefined>;

  /**
   * The request of the nginx module that writes a marked upload (NewUploadInfo.resumable) says it is
   * finished (a multipart request is about to post its form; on the file store, a session's segments
   * cover it): the mark goes, and from then on it is a finished upload like any other.
   */
  settleSegments(id: string): Promise<void>;
  /** The completion of a finished upload was handled: what was kept only to continue it may go. */
  completionHandled(id: string): Promise<void>;
  /** Announced (or gone): nothing is held for its completion any more. */
  settled(id: string): Promise<void>;

  // Several instances on one store (REDIS_URL): whose each completion is (completion-claims.ts).
  /** Finished uploads whose completion is not noted handled (read only), for the completion sweep. */
  unannounced(): Promise<string[]>;
  /** Takes over a finished upload's completion nobody handles; true when this instance holds it now. */
  takeOverCompletion(id: string): Promise<boolean>;
  /** Lets every completion claim go (a stopping instance): another instance's sweep takes them over. */
  releaseClaims(): Promise<void>;
}
