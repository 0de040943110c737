// A FileStore whose writes hash the bytes as they reach the disk. Each chunk is written first and
// hashed after, so the saved digest state never covers bytes the file does not hold. If the process
// dies between a write and the state save, the next write hashes the missing gap from disk (only the
// gap, never the whole file).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { ERRORS as TUS_ERRORS, isPathInsideDirectory, Upload } from '@tus/utils';
import type { BodyChecksum, ExpectedChecksum } from '../hashing/checksum.ts';
import { DigestState, type DigestName, type Digests, type RunningDigests } from '../hashing/digest-state.ts';
import { canHashInline, InlineDigests } from '../hashing/inline-digests.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { bytesReceived } from '../metrics.ts';
import type { Log } from '../../core/logger.ts';
import { isNoSpace, SpaceLedger, storageFull } from './admission.ts';
import { CompletionJournal, type Journal } from './completion-journal.ts';
import { FileAppender } from './file-appender.ts';
import { InfoStore } from './info-store.ts';
import type { WriteFence } from './redis-locker.ts';
import { needsChmod, PRIVATE_MODES, writeAtomically, type FileModes } from '../../core/file-modes.ts';

export interface DigestStoreOptions {
  directory: string;
  algorithms: readonly DigestName[];
  expirationPeriodInMilliseconds?: number;
  /** The tus extensions this store serves (what OPTIONS advertises). */
  extensions?: string[];
  /** The journal of handled completions (default: a hidden file in the store directory). */
  journalPath?: string;
  /** A journal kept elsewhere (PostgreSQL with DATABASE_URL: pg-journal.ts); journalPath is then unused. */
  journal?: Journal;
  /** MIN_FREE_SPACE: bytes kept free beyond what unfinished uploads are owed (default 0). */
  minFreeSpace?: number;
  /** Where a full disk and expired uploads are reported. */
  log?: Log;
  /** Modes of the uploads, their info, digest state and checksum markers, and the journal (core/file-modes.ts). Default 0600. */
  fileModes?: FileModes;
}

/** What the concatenation extension records in an upload's info file. */
export type ConcatInfo = { kind: 'partial' } | { kind: 'final'; parts: string[] };

export interface AppendOptions {
  /** Bytes accepted at most; more makes the result `exceeded` (the bytes up to the limit are kept). */
  limit?: number;
  /** Verify the body against this checksum; on mismatch nothing of the body is kept. */
  checksum?: { expected: ExpectedChecksum; running: BodyChecksum };
  /** Told the upload's offset each time a batch reaches the disk (for post-receive). */
  onProgress?: (offset: number) => void;
  /**
   * The upload's length, when known. A write that completes the upload saves no state: if the
   * process stops before the completion is handled, the gap since the last save is hashed again.
   */
  size?: number;
}

export interface AppendResult {
  offset: number;
  exceeded: boolean;
}

/** Digest states kept in memory (the rest are on disk only). */
const LIVE_STATES = 256;

export class DigestFileStore extends FileStore {
  readonly algorithms: readonly DigestName[];
  private readonly dir: string;
  private readonly live = new Map<string, RunningDigests>();
  /** Uploads just created, until their first write (creation-with-upload writes next). */
  private readonly created = new Map<string, Upload>();
  /**
   * Uploads a creation-with-upload just wrote, as @tus/server's POST reads them back right away
   * (only to see whether to send Upload-Expires): answered once from memory. Measured: that read
   * (info file + stat) cost 15% of the CPU time of a small upload with expiry on.
   */
  private readonly justWritten = new Map<string, Upload>();
  /** Uploads being appended to right now (their live states are in use). */
  private readonly busy = new Set<string>();
  private readonly journal: Journal;
  /** The bytes owed to unfinished uploads, for free-space admission (admission.ts). */
  readonly space: SpaceLedger;
  private readonly log: Log;
  private readonly info: InfoStore;
  /** Mode of every file the store creates. */
  private readonly fileMode: number;
  /**
   * With several instances on one store (REDIS_URL): every write proves its lock first, and the
   * version of the bytes it ends at is kept beside the live state. A live state whose version is no
   * longer the shared one was overtaken by another instance's writes: loaded again from the shared file.
   */
  fence: WriteFence | undefined;
  private readonly liveVersions = new Map<string, number>();

  constructor(options: DigestStoreOptions) {
    const info = new InfoStore(options.directory);
    info.fileMode = options.fileModes?.file ?? PRIVATE_MODES.file;
    super({ directory: options.directory, configstore: info, expirationPeriodInMilliseconds: options.expirationPeriodInMilliseconds });
    this.info = info;
    this.algorithms = options.algorithms;
    this.dir = path.resolve(options.directory);
    this.space = new SpaceLedger(this.dir, options.minFreeSpace ?? 0, options.log);
    this.log = options.log ?? (() => {});
    if (options.extensions) this.extensions = options.extensions;
    this.fileMode = options.fileModes?.file ?? PRIVATE_MODES.file;
    this.journal = options.journal ?? new CompletionJournal(options.journalPath ?? path.join(this.dir, '.completions-handled'), this.fileMode);
  }

  /** The upload's file in the store; ids that would lead outside it are not found (as FileStore does). */
  filePath(id: string): string {
    const file = path.join(this.dir, id);
    if (!isPathInsideDirectory(this.dir, file)) throw TUS_ERRORS.FILE_NOT_FOUND;
    return file;
  }

  /** Where the digest state of an upload is kept: beside the file and its .json info. */
  statePath(id: string): string {
    return `${this.filePath(id)}.digest`;
  }

  /** Marks a checksummed PATCH in progress: its start offset, so a crash mid-way can be undone. */
  private unverifiedPath(id: string): string {
    return `${this.filePath(id)}.unverified`;
  }

  /** Concatenation roles announced for ids about to be created (creation goes through @tus/server). */
  private readonly announced = new Map<string, ConcatInfo>();

  /** Announces that the upload about to be created with this id is a partial or a final upload. */
  announceConcat(id: string, concat: ConcatInfo): void {
    this.announced.set(id, concat);
  }

  /** Owners announced for ids about to be created: the verified subject of the creating request. */
  private readonly announcedOwners = new Map<string, string>();
  /** Owners of uploads read lately: an owner never changes, and HEAD/PATCH would read it on every request. */
  private readonly owners = new Map<string, string | undefined>();

  /** Announces who creates the upload about to be created with this id (kept in its info file, not in its metadata). */
  announceOwner(id: string, owner: string): void {
    this.announcedOwners.set(id, owner);
  }

  /** The subject that created the upload; undefined for an anonymous creation or an upload that does not exist. */
  async ownerOf(id: string): Promise<string | undefined> {
    if (this.owners.has(id)) return this.owners.get(id);
    const info = (await this.configstore.get(id)) as (Upload & { owner?: string }) | undefined;
    if (!info) return undefined;
    if (this.owners.size >= 4096) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(id, info.owner);
    return info.owner;
  }

  override async create(upload: Upload): Promise<Upload> {
    const concat = this.announced.get(upload.id);
    this.announced.delete(upload.id);
    const owner = this.announcedOwners.get(upload.id);
    this.announcedOwners.delete(upload.id);
    this.owners.delete(upload.id);
    // FileStore.create, without its mkdir for ids that sit directly in the store (all of ours, the
    // directory exists since the constructor) and with the concatenation role in the one info write.
    const file = this.filePath(upload.id);
    // Owed from now on: admissions that run while this one is created already count it.
    if (upload.size !== undefined) this.space.owe(upload.id, upload.size, 0);
    try {
      if (path.dirname(file) !== this.dir) await fsp.mkdir(path.dirname(file), { recursive: true });
      await new Promise<void>((resolve, reject) =>
        fs.open(file, 'w', this.fileMode, (e, fd) => {
          if (e) return reject(e);
          // The umask may have narrowed a group-readable mode: set it on the descriptor.
          const close = (e1?: Error | null) => fs.close(fd, (e2) => (e1 || e2 ? reject(e1 ?? e2) : resolve()));
          if (needsChmod(this.fileMode)) fs.fchmod(fd, this.fileMode, close);
          else close();
        }),
      );
      await this.configstore.set(upload.id, { ...upload, ...(concat && { concat }), ...(owner !== undefined && { owner }) } as Upload);
    } catch (e) {
      // Half a creation (an empty file, a cut info file) is no upload anyone can reach: gone.
      this.space.forget(upload.id);
      await fsp.rm(file, { force: true }).catch(() => undefined);
      await fsp.rm(`${file}.json`, { force: true }).catch(() => undefined);
      if (isNoSpace(e)) {
        this.space.sawFull(`creating upload ${upload.id}`);
        throw storageFull();
      }
      throw e;
    }
    upload.storage = { type: 'file', path: file };
    // Creation-with-upload writes next: remember the length instead of reading the info back.
    this.created.set(upload.id, upload);
    if (this.created.size > 1024) this.created.delete(this.created.keys().next().value!);
    // No digest state file yet: a missing state is the fresh state at offset 0.
    return upload;
  }

  override async getUpload(id: string): Promise<Upload> {
    const just = this.justWritten.get(id);
    if (just) {
      this.justWritten.delete(id);
      return just;
    }
    return super.getUpload(id);
  }

  /** Concatenation info of an upload, if it is a partial or a final one. */
  async concatOf(id: string): Promise<ConcatInfo | undefined> {
    const info = (await this.configstore.get(id)) as (Upload & { concat?: ConcatInfo }) | undefined;
    return info?.concat;
  }

  /** @tus/server's entry (creation-with-upload, right after create()): a plain append. */
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const created = this.created.get(id);
    this.created.delete(id);
    const size = created ? created.size : ((await this.configstore.get(id)) as Upload | undefined)?.size;
    try {
      const written = (await this.append(readable, id, offset, { size })).offset;
      bytesReceived.inc(written - offset);
      if (created && this.getExpiration() > 0 && this.hasExtension('expiration')) {
        this.justWritten.set(id, new Upload({ ...created, offset: written, storage: { type: 'file', path: this.filePath(id) } }));
        if (this.justWritten.size > 1024) this.justWritten.delete(this.justWritten.keys().next().value!);
      }
      return written;
    } catch (e) {
      // The client of a creation-with-upload refused for space gets no Location: it cannot resume
      // this upload, so it goes (and its owed bytes with it).
      if (isNoSpace(e) || (e instanceof TuspassError && e.code === ERRORS.ERR_STORAGE_FULL.code)) await this.remove(id).catch(() => undefined);
      throw e;
    }
  }

  /**
   * creation-defer-length: the length arrives with a PATCH. Admitted like a creation (507 when the
   * store cannot hold the bytes still to come), and written atomically: a full disk must not leave
   * the upload with a cut info file.
   */
  override async declareUploadLength(id: string, size: number): Promise<void> {
    const info = await this.configstore.get(id);
    if (!info) throw TUS_ERRORS.FILE_NOT_FOUND;
    const written = await fsp.stat(this.filePath(id)).then((s) => s.size, () => 0);
    const release = await this.space.admit(Math.max(0, size - written));
    try {
      await this.info.replace(id, { ...info, size } as Upload);
      this.space.owe(id, size, written);
      this.created.delete(id);
    } catch (e) {
      if (isNoSpace(e)) {
        this.space.sawFull(`declaring the length of upload ${id}`);
        throw storageFull();
      }
      throw e;
    } finally {
      release();
    }
  }

  /**
   * Appends a body at `offset`, hashing it on the way. With a checksum the body is kept only if it
   * matches: "the Server MUST respond with the 460 Checksum Mismatch status code and MUST NOT append
   * the chunk" — the file is cut back and the digest state left as it was.
   */
  async append(source: AsyncIterable<Buffer>, id: string, offset: number, options: AppendOptions = {}): Promise<AppendResult> {
    this.busy.add(id);
    try {
      return await this.appendBusy(source, id, offset, options);
    } catch (e) {
      // Whatever state the failure left in memory is not trusted: the next request loads the saved one.
      this.forgetLive(id);
      throw e;
    } finally {
      this.busy.delete(id);
    }
  }

  private async appendBusy(source: AsyncIterable<Buffer>, id: string, offset: number, options: AppendOptions): Promise<AppendResult> {
    const fence = this.fence;
    let version = 0;
    if (fence) {
      version = await fence.begin(id);
      // Another instance wrote since this one's live state was made (same offset or not): not trusted.
      if (this.liveVersions.get(id) !== version) this.forgetLive(id);
    }
    const state = await this.stateAt(id, offset, options.size);
    const beforeWrite = fence
      ? async (end: number) => {
          version = await fence.advance(id, version, end);
          this.liveVersions.set(id, version);
        }
      : undefined;
    if (fence) this.liveVersions.set(id, version);
    const checksum = options.checksum;
    if (checksum) {
      await writeAtomically(this.unverifiedPath(id), String(offset), this.fileMode).catch((e: unknown) => {
        throw isNoSpace(e) ? this.writeFailure(id, e) : e;
      });
    }
    const onProgress = options.onProgress;
    const appender = await FileAppender.open(
      this.filePath(id),
      offset,
      (chunk) => {
        checksum?.running.update(chunk);
        return state.update(chunk);
      },
      (position) => {
        this.space.progress(id, position);
        onProgress?.(position);
      },
      beforeWrite,
    );
    let exceeded = false;
    let failure: unknown;
    try {
      exceeded = await appender.pump(source, options.limit ?? Number.MAX_SAFE_INTEGER);
    } catch (e) {
      failure = e;
    } finally {
      await appender.close();
    }
    // A writer that lost its lock writes nothing more, not even its digest state or a checksum undo
    // (the next holder may already have moved the upload on): its live state goes, the saved one is
    // caught up from the file. (A checksummed body's marker stays: undone at the next start.)
    if (failure instanceof TuspassError && (failure.code === ERRORS.ERR_LOCK_LOST.code || failure.code === ERRORS.ERR_LOCK_UNAVAILABLE.code)) {
      this.forgetLive(id);
      throw failure;
    }
    if (checksum) {
      // An interrupted body cannot be verified, so it is dropped like a mismatching one.
      const ok = failure === undefined && !exceeded && checksum.running.matches(checksum.expected);
      if (!ok) {
        // The running digests took in the refused bytes: forget them; the saved state is still right.
        this.forgetLive(id);
        await fsp.truncate(this.filePath(id), offset);
        this.space.progress(id, offset);
        await fsp.rm(this.unverifiedPath(id), { force: true });
        if (failure === undefined && !exceeded) throw new TuspassError(ERRORS.ERR_CHECKSUM_MISMATCH);
        if (failure !== undefined) throw this.writeFailure(id, failure);
        return { offset, exceeded };
      }
    }
    if (state.offset !== options.size) {
      // Stopped short: saved for the next PATCH, or, for an inline state, dropped (it is rebuilt from the file).
      if (state.resumable) {
        // A state that cannot be saved (full disk) is only a shortcut lost: the next PATCH hashes
        // the gap since the last saved state from the file. The bytes written are kept.
        await state.save(this.statePath(id), this.fileMode).catch((e: unknown) => {
          if (!isNoSpace(e)) throw e;
          this.forgetLive(id);
        });
      } else this.forgetLive(id);
    }
    if (checksum) await fsp.rm(this.unverifiedPath(id), { force: true });
    if (failure !== undefined) throw this.writeFailure(id, failure);
    return { offset: state.offset, exceeded };
  }

  /**
   * What a failed append answers: 507 for a full disk — "A PATCH that still meets ENOSPC answers 507,
   * keeps what was written" (the file keeps every byte written; its size is the offset a HEAD
   * reports) — and otherwise @tus/server's write error, with the cause kept for the log.
   */
  private writeFailure(id: string, failure: unknown): unknown {
    if (failure instanceof TuspassError) return failure;
    if (isNoSpace(failure)) {
      this.space.sawFull(`writing upload ${id}, the bytes written so far kept`);
      return storageFull();
    }
    return { ...TUS_ERRORS.FILE_WRITE_ERROR, cause: failure };
  }

  /**
   * Builds a final upload from finished partials, in order, hashing the whole on the way. The caller
   * holds the partials' locks (final-handler.ts), so none is removed meanwhile; a partial missing all
   * the same (removed by hand) is ERR_CONCAT_PARTIAL_NOT_FOUND, found when it is opened — a read
   * stream's open failing before anyone listens would be an unhandled 'error' (the crash of defect 2).
   */
  async concatenate(finalId: string, parts: readonly string[], total: number): Promise<number> {
    let offset = 0;
    for (const part of parts) {
      const handle = await fsp.open(this.filePath(part), 'r').catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'ENOENT' ? new TuspassError(ERRORS.ERR_CONCAT_PARTIAL_NOT_FOUND, part) : e;
      });
      try {
        offset = (await this.append(readChunks(handle, 0, Infinity), finalId, offset, { size: total })).offset;
      } finally {
        await handle.close();
      }
    }
    return offset;
  }

  override async remove(id: string): Promise<void> {
    this.space.forget(id);
    this.forgetLive(id);
    this.created.delete(id);
    this.justWritten.delete(id);
    this.owners.delete(id);
    await super.remove(id);
    await fsp.rm(this.statePath(id), { force: true });
    await fsp.rm(this.unverifiedPath(id), { force: true });
  }

  /**
   * Removes unfinished uploads idle for longer than the expiration period. FileStore's own sweep compares the
   * size with the offset saved at creation (always 0), so it would remove finished uploads too, and
   * its listing misses uploads that have files beside them; this one looks at the file on disk.
   */
  override async deleteExpired(): Promise<number> {
    const period = this.getExpiration();
    if (period <= 0) return 0;
    let removed = 0;
    for (const name of await fsp.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      // An upload being written to is active, however long since its last completed write.
      if (this.busy.has(id)) continue;
      const info = (await this.configstore.get(id)) as Upload | undefined;
      const file = await fsp.stat(this.filePath(id)).catch(() => undefined);
      if (info?.size !== undefined && file?.size === info.size) continue;
      // Expired once nothing was written for the period (see expiry.ts).
      const created = info?.creation_date ? new Date(info.creation_date).getTime() : 0;
      if (Date.now() <= Math.max(created, file?.mtimeMs ?? 0) + period) continue;
      if (!(await this.remove(id).then(() => true, () => false))) continue;
      removed++;
      const owner = (info as { owner?: unknown } | undefined)?.owner;
      this.log(`upload ${id} expired: removed with ${file?.size ?? 0} of ${info?.size ?? 'unknown'} bytes received`, {
        event: 'upload.expired',
        upload_id: id,
        offset: file?.size ?? 0,
        size: info?.size,
        owner: typeof owner === 'string' && owner ? owner : undefined,
      });
    }
    return removed;
  }

  /** The digests of an upload's bytes so far (the whole file once it is finished). */
  async digests(id: string, offset: number): Promise<Digests> {
    return (await this.stateAt(id, offset)).digests();
  }

  /**
   * The completion of a finished upload was handled (hooks answered, the form delivered or queued):
   * noted in the journal, and its digest state is no longer needed.
   */
  async completionHandled(id: string): Promise<void> {
    const live = this.live.get(id);
    this.forgetLive(id);
    await this.journal.handled(id);
    if (!live || live.onDisk) await fsp.rm(this.statePath(id), { force: true });
  }

  /**
   * The start-up pass over the store — one listing, each unfinished upload's info read once — before
   * anything listens:
   * - checksummed PATCHes cut short by a stop are undone (undoUnverified);
   * - finished uploads whose completion was never handled (the process stopped in between) are
   *   returned: complete on disk and missing from the journal. The journal is trimmed to the uploads
   *   still stored;
   * - unfinished uploads of known length are entered in the free-space ledger (what they are owed);
   * - leftovers of a crash go: temp files of digest states and info files (a kill between write and
   *   rename), digest states of uploads whose completion was handled or that are gone, and info
   *   files whose upload file is gone (a kill during a removal).
   */
  async awaitingCompletion(): Promise<string[]> {
    const names = await fsp.readdir(this.dir);
    // On a store shared by several instances (fence set), a marker may belong to a PATCH running
    // on another instance right now: not undone here.
    if (!this.fence) await this.undoUnverified(names);
    const handled = await this.journal.ids();
    const present = new Set(names);
    const waiting: string[] = [];
    const stored = new Set<string>();
    const leftovers: string[] = [];
    for (const name of names) {
      if (TEMP_FILE.test(name)) {
        // Shared store: another instance's temp file, about to be renamed.
        if (this.fence) continue;
        leftovers.push(name);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!present.has(id)) {
        leftovers.push(name);
        continue;
      }
      stored.add(id);
      // Handled: finished and announced; its digest state is no longer needed.
      if (handled.has(id)) {
        if (present.has(`${id}.digest`)) leftovers.push(`${id}.digest`);
        continue;
      }
      const info = (await this.configstore.get(id)) as Upload | undefined;
      const size = await fsp.stat(this.filePath(id)).then((s) => s.size, () => -1);
      if (info?.size === undefined) continue;
      if (size === info.size) waiting.push(id);
      else if (size >= 0 && size < info.size) this.space.owe(id, info.size, size);
    }
    for (const name of names) {
      if (name.endsWith('.digest') && !stored.has(name.slice(0, -'.digest'.length))) leftovers.push(name);
    }
    for (const name of leftovers) await fsp.rm(path.join(this.dir, name), { force: true });
    await this.journal.compact(new Set([...handled].filter((id) => stored.has(id))));
    return waiting;
  }

  private forgetLive(id: string): void {
    this.live.get(id)?.release();
    this.live.delete(id);
    this.liveVersions.delete(id);
  }

  /**
   * Checksummed PATCHes that never finished (the process stopped mid-body) are undone: each file is
   * cut back to where that PATCH started. Only at start, before anything listens: while running, a
   * marker belongs to a PATCH in progress, which removes it itself.
   */
  async undoUnverified(names?: string[]): Promise<string[]> {
    const undone: string[] = [];
    for (const name of names ?? (await fsp.readdir(this.dir))) {
      if (!name.endsWith('.unverified')) continue;
      const id = name.slice(0, -'.unverified'.length);
      const text = await fsp.readFile(this.unverifiedPath(id), 'utf8').catch(() => '');
      // A marker that is not a whole number (cut short) says nothing trustworthy: leave the file.
      if (/^\d+$/.test(text)) {
        await fsp.truncate(this.filePath(id), Number(text)).catch(() => undefined);
        // A state saved by that PATCH would be ahead of the file: gone, rebuilt from the file.
        await fsp.rm(this.statePath(id), { force: true });
        undone.push(id);
      }
      await fsp.rm(this.unverifiedPath(id), { force: true });
    }
    return undone;
  }

  /**
   * The digest state covering exactly `offset` bytes. A state behind the file (crash after a write,
   * before the save) is caught up by hashing the gap from disk; a missing, unreadable or ahead state
   * (file truncated by hand, configuration changed) is rebuilt from the file.
   */
  private async stateAt(id: string, offset: number, size?: number): Promise<RunningDigests> {
    const live = this.live.get(id);
    if (live && live.offset === offset) return live;
    this.forgetLive(id);
    // Nothing written yet: the state is the fresh one, whatever the disk holds.
    if (offset === 0) {
      const fresh = canHashInline(this.algorithms, size) ? new InlineDigests(this.algorithms) : await DigestState.fresh(this.algorithms);
      this.keepLive(id, fresh);
      return fresh;
    }
    let state = await DigestState.load(this.statePath(id), this.algorithms);
    if (state && state.offset > offset) {
      state.release();
      state = undefined;
    }
    if (!state) {
      // Missing, unusable or ahead of the file: whatever file is there says nothing true any more.
      await fsp.rm(this.statePath(id), { force: true });
      state = await DigestState.fresh(this.algorithms);
    }
    if (state.offset < offset) {
      const handle = await fsp.open(this.filePath(id), 'r');
      try {
        for await (const chunk of readChunks(handle, state.offset, offset)) await state.update(chunk);
      } finally {
        await handle.close();
      }
      // Only a shortcut for the next request: a full disk must not fail this one.
      await state.save(this.statePath(id), this.fileMode).catch((e: unknown) => {
        if (!isNoSpace(e)) throw e;
      });
    }
    this.keepLive(id, state);
    return state;
  }

  /** Keeps the states of recently written uploads in memory, so a PATCH does not read them back. */
  private keepLive(id: string, state: RunningDigests): void {
    this.live.set(id, state);
    if (this.live.size <= LIVE_STATES) return;
    // The oldest state not being written to goes (its hashers back to the pool; it is saved on disk).
    for (const candidate of this.live.keys()) {
      if (this.busy.has(candidate) || candidate === id) continue;
      this.forgetLive(candidate);
      return;
    }
  }
}

// FileStore's constructor creates its directory asynchronously and throws inside the callback, where
// nothing can catch it and the process dies. Replacing that (private) step with a synchronous mkdir
// makes a failure surface in the constructor instead.
Object.defineProperty(DigestFileStore.prototype, 'checkOrCreateDirectory', {
  value(this: { directory: string }) {
    fs.mkdirSync(this.directory, { recursive: true });
  },
});


/**
 * Bytes [start, end) of an open file, in chunks of 1 MiB. A generator rather than a read stream: a
 * stream's errors are events, lost (and fatal) when nothing listens yet; here a failed read is a
 * rejection of the consumer's own next().
 */
async function* readChunks(handle: fsp.FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
  for (let position = start; position < end; ) {
    const chunk = Buffer.allocUnsafe(Math.min(1 << 20, end - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.byteLength, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
}

/** Temp files of digest states and info files (`<name>.<pid>.tmp`), and of checksum markers. */
const TEMP_FILE = /\.(?:digest|json)\.\d+\.tmp$|\.unverified\.tmp$/;
