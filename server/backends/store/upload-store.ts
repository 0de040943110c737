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
import type { BodyInfo, ConcatInfo, NewUploadInfo } from './stored-info.ts';
import type { ExpiryPeriods } from './stored-upload.ts';

export type { AppendOptions, AppendResult, BodyInfo, ConcatInfo, ExpiryPeriods, NewUploadInfo };

/** What a store says of an upload's bytes: how many it holds, and when it was last written (ms since the epoch). */
export interface WrittenBytes {
  size: number;
  mtimeMs: number;
}

/** A DataStore (@tus/utils' store contract, which @tus/file-store's FileStore implements). */
export interface UploadStore extends DataStore {
  /** The digests computed on the way in besides md5 (md5 always). */
  readonly algorithms: readonly DigestName[];
  /** When unfinished uploads expire (store/stored-upload.ts expiresAt). */
  readonly expiry: ExpiryPeriods;

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
  /** The upload and every byte and record of it go (an unfinished multipart upload is aborted). */
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
  /** Where a client may fetch the finished upload's bytes itself (a presigned URL), if the store offers that. */
  downloadUrl?(id: string): Promise<string | undefined>;
  /**
   * Where the finished upload's bytes are, as the completion form's `.path` says it: a file path, or s3://bucket/key.
   */
  location(id: string): string;

  // What the creation recorded (stored-info.ts).
  concatOf(id: string): Promise<ConcatInfo | undefined>;
  ownerOf(id: string): Promise<string | undefined>;
  accessOf(id: string): Promise<{ owner: string | undefined; segmented: boolean } | undefined>;

  /** The completion of a finished upload was handled: what was kept only to continue it may go. */
  completionHandled(id: string): Promise<void>;
  /** Announced (or gone): nothing is held for its completion any more. */
  settled(id: string): Promise<void>;
}
