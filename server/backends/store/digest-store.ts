// A FileStore whose writes hash the bytes as they reach the disk (append.ts). This class is
// the composition the routes see; each concern sits in its own file:
//   store-paths.ts       where an upload's files sit (file, .json, .digest, .unverified)
//   info-store.ts        the .json info files
//   stored-info.ts       the info file's own fields (owner, concatenation role, marks), who owns an upload
//   new-upload.ts        the files of a creation
//   append.ts            one append, hashed on the way (hashing/live-digests.ts holds the states)
//   unverified-marks.ts  checksummed PATCHes in progress, undone at start when cut short
//   full-disk.ts         what a failed write answers (507 on a full disk)
//   start-pass.ts        the start-up pass (awaiting completions, ledger, leftovers)
//   expired-uploads.ts   the expiry sweep
//   concatenate.ts       a final upload from its partials
// Its base class is @tus/file-store's FileStore with one private step replaced (file-store.ts).
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ERRORS as TUS_ERRORS, type Upload } from '@tus/utils';
import type { DigestName, Digests } from '../../../core/wire.ts';
import { LiveDigests } from '../../hashing/live-digests.ts';
import { readChunks } from '../../hashing/read-chunks.ts';
import { PRIVATE_MODES, type FileModes } from '../../../core/file-modes.ts';
import type { Log } from '../../../core/logger.ts';
import { isNoSpace, SpaceLedger, type OwnerLimits } from './space-ledger.ts';
import { storedOwnerKey } from '../../auth/upload-owner.ts';
import type { Claims } from '../locker/claims.ts';
import { CompletionClaims } from './completion-claims.ts';
import { CompletionJournal, type Journal } from '../journal/completion-journal.ts';
import type { WriteFence } from '../locker/redis-locker.ts';
import {
  storedInfo,
  UploadOwners,
  type BodyInfo,
  type ConcatInfo,
  type NewUploadInfo,
  type StoredInfo,
} from './stored-info.ts';
import { appendHashed, type AppendOptions, type AppendResult } from './append.ts';
import { concatenateParts } from './concatenate.ts';
import { removeExpired } from './expired-uploads.ts';
import { fullDiskAnswer } from './full-disk.ts';
import { InfoStore } from './info-store.ts';
import { createUploadFiles, idTaken, isIdTaken } from './new-upload.ts';
import { awaitingCompletion } from './start-pass.ts';
import { StorePaths } from './store-paths.ts';
import { finishedUnannounced, readStored, type ExpiryPeriods } from './stored-upload.ts';
import { EngineFileStore } from './file-store.ts';
import { UnverifiedMarks } from './unverified-marks.ts';
import type { UploadStore, WrittenBytes } from './upload-store.ts';
import type { DownloadSource } from '../../http/download.ts';
import { BodyInterrupted } from '../../http/dropped-requests.ts';

export type { AppendOptions, AppendResult, BodyInfo, ConcatInfo, NewUploadInfo };

export interface DigestStoreOptions {
  directory: string;
  algorithms: readonly DigestName[];
  expirationPeriodInMilliseconds?: number;
  /**
   * EXPIRE_UNSTARTED_AFTER: an upload that received no byte expires this long after its creation (0: never by this
   * rule).
   */
  unstartedExpirationMs?: number;
  /** The tus extensions this store serves (what OPTIONS advertises). */
  extensions?: string[];
  /**
   * The journal of handled completions (default: a hidden file in the store directory, shared by the instances on it).
   */
  journalPath?: string;
  /** A journal kept elsewhere (PostgreSQL with DATABASE_URL: pg-journal.ts); journalPath is then unused. */
  journal?: Journal;
  /** MIN_FREE_SPACE: bytes kept free beyond what unfinished uploads are owed (default 0). */
  minFreeSpace?: number;
  /** OWNER_MAX_OPEN, OWNER_MAX_OWED (default: no limits). */
  ownerLimits?: OwnerLimits;
  /** Where a full disk and expired uploads are reported. */
  log?: Log;
  /**
   * Modes of the uploads, their info, digest state and checksum markers, and the journal (core/file-modes.ts). Default
   * 0600.
   */
  fileModes?: FileModes;
}

export class DigestFileStore extends EngineFileStore implements UploadStore {
  readonly algorithms: readonly DigestName[];
  /** When unfinished uploads expire (stored-upload.ts expiresAt). */
  readonly expiry: ExpiryPeriods;
  /**
   * Free space and per-owner limits: every creation, declared length and append is admitted there (space-ledger.ts).
   */
  readonly space: SpaceLedger;
  /** With several instances on one store (REDIS_URL): every write proves its lock first (append.ts). */
  fence: WriteFence | undefined;
  /** Whose each finished upload's completion is, with several instances (completion-claims.ts). */
  private readonly completions: CompletionClaims;
  private readonly paths: StorePaths;
  private readonly info: InfoStore;
  private readonly journal: Journal;
  private readonly log: Log;
  /** Mode of every file the store creates. */
  private readonly fileMode: number;
  private readonly owners: UploadOwners;
  private readonly marks: UnverifiedMarks;
  private readonly live: LiveDigests;
  /** Uploads being appended to right now (their live states are in use). */
  private readonly busy = new Set<string>();
  /**
   * Parts of the multipart requests running here: marked unfinished until their form goes, yet no
   * expiry of theirs while the request writes its other parts or runs its pre-finish hooks.
   */
  private readonly requestRunning = new Set<string>();

  constructor(options: DigestStoreOptions) {
    const fileMode = options.fileModes?.file ?? PRIVATE_MODES.file;
    const info = new InfoStore(options.directory);
    info.fileMode = fileMode;
    super({
      directory: options.directory,
      configstore: info,
      expirationPeriodInMilliseconds: options.expirationPeriodInMilliseconds,
    });
    this.info = info;
    this.fileMode = fileMode;
    this.algorithms = options.algorithms;
    this.expiry = {
      afterLastWrite: options.expirationPeriodInMilliseconds ?? 0,
      unstarted: options.unstartedExpirationMs ?? 0,
    };
    this.paths = new StorePaths(options.directory);
    this.space = new SpaceLedger(this.paths.dir, options.minFreeSpace ?? 0, options.log, options.ownerLimits);
    this.log = options.log ?? (() => {});
    this.completions = new CompletionClaims(this.log);
    if (options.extensions) this.extensions = options.extensions;
    // Beside the uploads it is the journal of every instance on the store.
    this.journal =
      options.journal ??
      new CompletionJournal(
        options.journalPath ?? path.join(this.paths.dir, '.completions-handled'),
        fileMode,
        options.journalPath === undefined,
      );
    this.owners = new UploadOwners(info);
    this.marks = new UnverifiedMarks(this.paths, fileMode);
    this.live = new LiveDigests({
      algorithms: this.algorithms,
      filePath: (id) => this.paths.filePath(id),
      statePath: (id) => this.paths.statePath(id),
      fileMode,
      inUse: (id) => this.busy.has(id),
      isNoSpace,
    });
  }

  /** The upload's file in the store; ids that would lead outside it are not found (as FileStore does). */
  filePath(id: string): string {
    return this.paths.filePath(id);
  }

  /** The completion form's `.path`: the upload's file. */
  location(id: string): string {
    return this.paths.filePath(id);
  }

  /** The finished upload's file, open. */
  async openFinished(id: string): Promise<{ file: DownloadSource; size: number; modified: Date }> {
    const file = await fsp.open(this.paths.filePath(id), 'r');
    try {
      const stat = await file.stat();
      return { file, size: stat.size, modified: stat.mtime };
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** The file's size and last write (undefined: no file). */
  async written(id: string): Promise<WrittenBytes | undefined> {
    return fsp.stat(this.paths.filePath(id)).then(
      (s) => ({ size: s.size, mtimeMs: s.mtimeMs }),
      () => undefined,
    );
  }

  /** Where the digest state of an upload is kept: beside the file and its .json info. */
  statePath(id: string): string {
    return this.paths.statePath(id);
  }

  /**
   * Whether the upload is written in segments and not finished ('open'), is an upload like any other
   * ('plain': never in segments, or its segments settled), or is gone (undefined). Read from disk each
   * time: another instance may have settled or removed it.
   */
  async segmentsOf(id: string): Promise<'open' | 'plain' | undefined> {
    const { info, file } = await readStored(id, this.info, this.paths);
    if (!info || !file) return undefined;
    return info.resumable ? 'open' : 'plain';
  }

  /**
   * The request of the nginx module that writes the upload says it is finished (a session's segments
   * cover it; a multipart request is about to post its form): its mark goes, atomically, and from
   * then on it is a finished upload like any other (announced at start if its completion was never
   * handled).
   */
  async settleSegments(id: string): Promise<void> {
    this.requestRunning.delete(id);
    const info = (await this.info.get(id)) as StoredInfo | undefined;
    if (!info?.resumable) return;
    const { resumable: _, ...settled } = info;
    try {
      await this.info.replace(id, settled as Upload);
    } catch (e) {
      throw fullDiskAnswer(this.space, e, `settling upload ${id}`);
    }
    this.space.forget(id);
  }

  /** The subject that created the upload; undefined for an anonymous creation or an upload that does not exist. */
  ownerOf(id: string): Promise<string | undefined> {
    return this.owners.ownerOf(id, this.ownersCached());
  }

  /** Who created the upload and whether its segments are still being written (undefined: no such upload). */
  accessOf(id: string): Promise<{ owner: string | undefined; segmented: boolean } | undefined> {
    return this.owners.accessOf(id, this.ownersCached());
  }

  /**
   * Another instance on this store (REDIS_URL) may remove an upload, and a pre-create hook there give
   * its id to someone else: an owner remembered here would let the old one in. Read from disk then.
   */
  private ownersCached(): { cached: boolean } {
    return { cached: this.fence === undefined };
  }

  /** Concatenation info of an upload, if it is a partial or a final one. */
  concatOf(id: string): Promise<ConcatInfo | undefined> {
    return this.owners.concatOf(id);
  }

  /**
   * Creates the upload's files, with what its creation route knows of it (NewUploadInfo: its creator,
   * concatenation role, mark) in its info file.
   */
  override async create(upload: Upload, created: NewUploadInfo = {}): Promise<Upload> {
    const stored = storedInfo(upload, created);
    this.owners.forget(upload.id);
    const file = this.filePath(upload.id);
    // Admitted (free space, the owner's limits) and owed from now on, in one step: admissions that
    // run while this one is created already count it.
    await this.space.open(upload.id, storedOwnerKey(stored), upload.size);
    try {
      await createUploadFiles(this.paths.dir, file, this.fileMode, () => this.configstore.set(upload.id, stored));
    } catch (e) {
      this.space.forget(upload.id);
      if (isIdTaken(e)) {
        // The other creation's upload, recorded again as the disk has it.
        const { info, file: onDisk } = await readStored(upload.id, this.info, this.paths);
        if (info && onDisk) this.space.restore(upload.id, storedOwnerKey(info), info.size, onDisk.size);
        throw idTaken(upload.id);
      }
      throw fullDiskAnswer(this.space, e, `creating upload ${upload.id}`);
    }
    this.owners.created(upload.id, stored);
    upload.storage = { type: 'file', path: file };
    if (stored.resumable === 'multipart') this.requestRunning.add(upload.id);
    // No digest state file yet: a missing state is the fresh state at offset 0.
    return upload;
  }

  /** A plain append of a whole body at `offset` (DataStore's write). */
  override async write(
    readable: Readable,
    id: string,
    offset: number,
    body: BodyInfo & { size?: number } = {},
  ): Promise<number> {
    const size = 'size' in body ? body.size : (await this.configstore.get(id))?.size;
    return (await this.append(readable, id, offset, { ...body, size })).offset;
  }

  /**
   * creation-defer-length: the length arrives with a PATCH (or a multipart part's end). Admitted
   * like a creation (507 when the store cannot hold the bytes still to come, 429 past the owner's
   * share), and written atomically: a full disk must not leave the upload with a cut info file.
   */
  override async declareUploadLength(id: string, size: number): Promise<void> {
    const info = await this.configstore.get(id);
    if (!info) throw TUS_ERRORS.FILE_NOT_FOUND;
    const written = await fsp.stat(this.filePath(id)).then(
      (s) => s.size,
      () => 0,
    );
    await this.space.declare(id, size, written);
    try {
      // Complete once the length is written (the multipart endpoint declares it after the bytes):
      // claimed before the info says so, so no sweep takes it for an upload nobody handles.
      if (size === written) await this.completed(id);
      await this.info.replace(id, { ...info, size } as Upload);
    } catch (e) {
      // Still of unknown length: owed nothing, as before.
      this.space.restore(id, storedOwnerKey(info as StoredInfo), undefined, written);
      throw fullDiskAnswer(this.space, e, `declaring the length of upload ${id}`);
    }
  }

  /** Appends a body at `offset`, hashing it on the way (append.ts). */
  async append(
    source: AsyncIterable<Buffer>,
    id: string,
    offset: number,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    this.busy.add(id);
    try {
      const result = await appendHashed(
        { paths: this.paths, digests: this.live, marks: this.marks, space: this.space, fence: this.fence },
        source,
        id,
        offset,
        options,
      );
      // Still under the upload's lock: its completion is claimed before any sweep can see it unlocked.
      if (options.size !== undefined && result.offset === options.size) await this.completed(id);
      return result;
    } catch (e) {
      // Whatever state the failure left in memory is not trusted: the next request loads the saved one.
      this.live.forget(id);
      // A connection that went right after the upload's last byte left it complete: claimed as above.
      if (e instanceof BodyInterrupted && e.kept > 0 && options.size !== undefined && e.offset === options.size)
        await this.completed(id);
      throw e;
    } finally {
      this.busy.delete(id);
    }
  }

  /** Builds a final upload from finished partials, in order, hashing the whole on the way (concatenate.ts). */
  concatenate(finalId: string, parts: readonly string[], total: number): Promise<number> {
    return concatenateParts(
      parts,
      async (id) => {
        // Opened here, not as a read stream: a stream's open failing before anyone listens would be
        // an unhandled 'error'.
        const handle = await fsp.open(this.filePath(id), 'r').catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return undefined;
          throw e;
        });
        return handle && { chunks: readChunks(handle, 0, Infinity), close: () => handle.close() };
      },
      async (source) => (await this.append(source, finalId, 0, { size: total })).offset,
    );
  }

  override async remove(id: string): Promise<void> {
    await this.settled(id);
    this.space.forget(id);
    this.live.forget(id);
    this.requestRunning.delete(id);
    this.owners.forget(id);
    await super.remove(id);
    this.space.freed();
    await fsp.rm(this.statePath(id), { force: true });
    await this.marks.clear(id);
  }

  /**
   * Removes unfinished uploads past their expiry (expired-uploads.ts); their owed bytes and owners' shares go with
   * them.
   */
  override deleteExpired(): Promise<number> {
    return removeExpired({
      paths: this.paths,
      info: this.info,
      periods: this.expiry,
      inUse: (id) => this.busy.has(id) || this.requestRunning.has(id),
      remove: (id) => this.remove(id),
      log: this.log,
    });
  }

  /** The digests of an upload's bytes so far (the whole file once it is finished). */
  async digests(id: string, offset: number): Promise<Digests> {
    return (await this.live.at(id, offset)).digests();
  }

  /**
   * The completion of a finished upload was handled (hooks answered, the form delivered or queued):
   * noted in the journal, and its digest state is no longer needed.
   */
  async completionHandled(id: string): Promise<void> {
    // Finished: owed nothing, no longer open (also where its last bytes did not come through append).
    this.space.forget(id);
    const live = this.live.forget(id);
    await this.journal.handled(id);
    await this.settled(id);
    if (!live || live.onDisk) await fsp.rm(this.statePath(id), { force: true });
  }

  /** Complete: no more writes, so its version goes; its completion is this instance's to handle. */
  private async completed(id: string): Promise<void> {
    if (!this.fence) return this.completions.completed(id);
    // Two independent round trips, sent together (the Redis connection pipelines them).
    await Promise.all([this.fence.forget(id), this.completions.completed(id)]);
    this.forgotten.add(id);
  }

  /** Uploads completed here whose version is already gone from Redis: their settling has nothing more to forget. */
  private readonly forgotten = new Set<string>();

  /** Announced (or gone): nothing is kept for it in Redis any more, its completion claim included. */
  async settled(id: string): Promise<void> {
    await this.completions.release(id);
    if (!this.forgotten.delete(id)) await this.fence?.forget(id);
  }

  /**
   * With several instances on one store (REDIS_URL): the instance whose write completes an upload
   * claims its completion until the journal has it, so no other instance's sweep announces it
   * meanwhile (claims.ts, completion-sweep.ts).
   */
  set claims(claims: Claims | undefined) {
    this.completions.claims = claims;
  }

  /** For the completion sweep: this instance holds the completion now, the journal still lacking it. */
  takeOverCompletion(id: string): Promise<boolean> {
    return this.completions.takeOver(id, () => this.journal.has(id));
  }

  /** Lets every completion claim go (a stopping instance): another instance's sweep takes them over. */
  releaseClaims(): Promise<void> {
    return this.completions.releaseAll();
  }

  /** Finished uploads missing from the journal (read only), for the completion sweep. */
  unannounced(): Promise<string[]> {
    return finishedUnannounced(this.paths, this.info, this.journal);
  }

  /**
   * The start-up pass over the store, before anything listens (start-pass.ts): the finished
   * uploads still to announce. `received`: what each upload written in segments has received.
   */
  awaitingCompletion(received?: (id: string) => number | undefined): Promise<string[]> {
    // On a store shared by several instances (fence set), markers and temp files may be another's.
    return awaitingCompletion({
      paths: this.paths,
      info: this.info,
      journal: this.journal,
      space: this.space,
      marks: this.marks,
      shared: this.fence !== undefined,
      received,
      log: this.log,
    });
  }

  /** Checksummed PATCHes that never finished are undone (unverified-marks.ts). Only at start. */
  async undoUnverified(names?: string[]): Promise<string[]> {
    return this.marks.undoAll(names ?? (await fsp.readdir(this.paths.dir)));
  }
}
