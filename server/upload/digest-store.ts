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
import type { BodyChecksum, ExpectedChecksum } from './checksum.ts';
import { DigestState, type DigestName, type Digests, type RunningDigests } from './digest-state.ts';
import { canHashInline, InlineDigests } from './inline-digests.ts';
import { ERRORS, TuspassError } from '../errors.ts';
import { CompletionJournal } from './completion-journal.ts';
import { FileAppender } from './file-appender.ts';
import { InfoStore } from './info-store.ts';

export interface DigestStoreOptions {
  directory: string;
  algorithms: readonly DigestName[];
  expirationPeriodInMilliseconds?: number;
  /** The tus extensions this store serves (what OPTIONS advertises). */
  extensions?: string[];
  /** The journal of handled completions (default: a hidden file in the store directory). */
  journalPath?: string;
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
  private readonly createdSizes = new Map<string, number | undefined>();
  /** Uploads being appended to right now (their live states are in use). */
  private readonly busy = new Set<string>();
  private readonly journal: CompletionJournal;

  constructor(options: DigestStoreOptions) {
    super({ directory: options.directory, configstore: new InfoStore(options.directory), expirationPeriodInMilliseconds: options.expirationPeriodInMilliseconds });
    this.algorithms = options.algorithms;
    this.dir = path.resolve(options.directory);
    if (options.extensions) this.extensions = options.extensions;
    this.journal = new CompletionJournal(options.journalPath ?? path.join(this.dir, '.completions-handled'));
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

  override async create(upload: Upload): Promise<Upload> {
    const concat = this.announced.get(upload.id);
    this.announced.delete(upload.id);
    // FileStore.create, without its mkdir for ids that sit directly in the store (all of ours, the
    // directory exists since the constructor) and with the concatenation role in the one info write.
    const file = this.filePath(upload.id);
    if (path.dirname(file) !== this.dir) await fsp.mkdir(path.dirname(file), { recursive: true });
    await new Promise<void>((resolve, reject) =>
      fs.open(file, 'w', (e, fd) => (e ? reject(e) : fs.close(fd, (e2) => (e2 ? reject(e2) : resolve())))),
    );
    await this.configstore.set(upload.id, (concat ? { ...upload, concat } : upload) as Upload);
    upload.storage = { type: 'file', path: file };
    // Creation-with-upload writes next: remember the length instead of reading the info back.
    this.createdSizes.set(upload.id, upload.size);
    if (this.createdSizes.size > 1024) this.createdSizes.delete(this.createdSizes.keys().next().value!);
    // No digest state file yet: a missing state is the fresh state at offset 0.
    return upload;
  }

  /** Concatenation info of an upload, if it is a partial or a final one. */
  async concatOf(id: string): Promise<ConcatInfo | undefined> {
    const info = (await this.configstore.get(id)) as (Upload & { concat?: ConcatInfo }) | undefined;
    return info?.concat;
  }

  /** @tus/server's entry (creation-with-upload, right after create()): a plain append. */
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const size = this.createdSizes.has(id) ? this.createdSizes.get(id) : ((await this.configstore.get(id)) as Upload | undefined)?.size;
    this.createdSizes.delete(id);
    return (await this.append(readable, id, offset, { size })).offset;
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
    const state = await this.stateAt(id, offset, options.size);
    const checksum = options.checksum;
    if (checksum) await writeAtomically(this.unverifiedPath(id), String(offset));
    const appender = await FileAppender.open(
      this.filePath(id),
      offset,
      (chunk) => {
        checksum?.running.update(chunk);
        return state.update(chunk);
      },
      options.onProgress,
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
    if (checksum) {
      // An interrupted body cannot be verified, so it is dropped like a mismatching one.
      const ok = failure === undefined && !exceeded && checksum.running.matches(checksum.expected);
      if (!ok) {
        // The running digests took in the refused bytes: forget them; the saved state is still right.
        this.forgetLive(id);
        await fsp.truncate(this.filePath(id), offset);
        await fsp.rm(this.unverifiedPath(id), { force: true });
        if (failure === undefined && !exceeded) throw new TuspassError(ERRORS.ERR_CHECKSUM_MISMATCH);
        if (failure !== undefined) throw TUS_ERRORS.FILE_WRITE_ERROR;
        return { offset, exceeded };
      }
    }
    if (state.offset !== options.size) {
      // Stopped short: saved for the next PATCH, or, for an inline state, dropped (it is rebuilt from the file).
      if (state.resumable) await state.save(this.statePath(id));
      else this.forgetLive(id);
    }
    if (checksum) await fsp.rm(this.unverifiedPath(id), { force: true });
    if (failure !== undefined) throw TUS_ERRORS.FILE_WRITE_ERROR;
    return { offset: state.offset, exceeded };
  }

  /** Builds a final upload from finished partials, in order, hashing the whole on the way. */
  async concatenate(finalId: string, parts: readonly string[], total: number): Promise<number> {
    let offset = 0;
    for (const part of parts) {
      const source = fs.createReadStream(this.filePath(part), { highWaterMark: 1 << 20 });
      offset = (await this.append(source as AsyncIterable<Buffer>, finalId, offset, { size: total })).offset;
    }
    return offset;
  }

  override async remove(id: string): Promise<void> {
    this.forgetLive(id);
    this.createdSizes.delete(id);
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
      await this.remove(id).catch(() => undefined);
      removed++;
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
   * Finished uploads whose completion was never handled (the process stopped in between): complete
   * on disk and missing from the journal. Also trims the journal to the uploads still stored.
   */
  async awaitingCompletion(): Promise<string[]> {
    await this.undoUnverified();
    const handled = await this.journal.ids();
    const waiting: string[] = [];
    const stored = new Set<string>();
    for (const name of await fsp.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      stored.add(id);
      if (handled.has(id)) continue;
      const info = (await this.configstore.get(id)) as Upload | undefined;
      const size = await fsp.stat(this.filePath(id)).then((s) => s.size, () => -1);
      if (info?.size !== undefined && size === info.size) waiting.push(id);
    }
    await this.journal.compact(new Set([...handled].filter((id) => stored.has(id))));
    return waiting;
  }

  private forgetLive(id: string): void {
    this.live.get(id)?.release();
    this.live.delete(id);
  }

  /**
   * Checksummed PATCHes that never finished (the process stopped mid-body) are undone: each file is
   * cut back to where that PATCH started. Only at start, before anything listens: while running, a
   * marker belongs to a PATCH in progress, which removes it itself.
   */
  async undoUnverified(): Promise<string[]> {
    const undone: string[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      if (!name.endsWith('.unverified')) continue;
      const id = name.slice(0, -'.unverified'.length);
      const text = await fsp.readFile(this.unverifiedPath(id), 'utf8').catch(() => '');
      // A marker that is not a whole number (cut short) says nothing trustworthy: leave the file.
      if (/^\d+$/.test(text)) {
        await fsp.truncate(this.filePath(id), Number(text)).catch(() => undefined);
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
    state ??= await DigestState.fresh(this.algorithms);
    if (state.offset < offset) {
      const gap = fs.createReadStream(this.filePath(id), { start: state.offset, end: offset - 1, highWaterMark: 1 << 20 });
      for await (const chunk of gap as AsyncIterable<Buffer>) await state.update(chunk);
      await state.save(this.statePath(id));
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

/** Temp file + rename: a crash never leaves the file half-written. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, file);
}
