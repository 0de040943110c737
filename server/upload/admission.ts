// The creation gate: an upload is admitted only if the store can hold it, and only while the notice
// queue can still take its completion.
//
// Free space: the store's free space (statfs), minus the bytes still owed to every unfinished upload
// (their declared lengths not yet written), minus MIN_FREE_SPACE, must hold the new upload's length —
// otherwise 507 Insufficient Storage. The owed bytes are kept in memory (SpaceLedger): built by the
// start-up scan of the store, then kept up to date by the store on every creation, write, declared
// length and removal (expiry included), so no request scans the store. statfs is sampled at most once
// a second; the bytes written since the sample are subtracted from it, so a burst of writes does not
// make the sample optimistic.
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type express from 'express';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { concatRoleOf } from './protocol-guards.ts';
import { nonNegativeInteger } from './tus-headers.ts';
import { sendTusError } from './tus-response.ts';

/** How long a statfs sample is used. Measured: a statfs costs ~10 µs of a libuv thread; see the report in the commit. */
const SAMPLE_MS = 1000;

/** "No space" errors of the file system: the disk, or the user's quota, is full. */
export const isNoSpace = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
};

/**
 * 507 ERR_STORAGE_FULL with a plain message and no path. (`status_code` and `body` are what
 * @tus/server's own answer would read; every tus answer now goes through sendTusError, which takes
 * it as the TuspassError it is.)
 */
export function storageFull(detail?: string): TuspassError & { status_code: number; body: string } {
  const e = new TuspassError(ERRORS.ERR_STORAGE_FULL, detail);
  return Object.assign(e, { status_code: e.status, body: `${e.code}: ${e.message}\n` });
}

export class SpaceLedger {
  /** Unfinished uploads of known length: their length and the bytes written so far. */
  private readonly uploads = new Map<string, { size: number; written: number; segmented?: true }>();
  private owedTotal = 0;
  /** Bytes admitted to creations not yet recorded (their request is still before store.create). */
  private reserved = 0;
  private sample: { free: number; at: number } | undefined;
  private sampling: Promise<number> | undefined;
  /** Bytes written to uploads since the sample was taken (not yet visible in it). */
  private writtenSinceSample = 0;

  private lastFullLog = -Infinity;
  private fullSinceLog = 0;

  constructor(
    private readonly dir: string,
    /** MIN_FREE_SPACE: kept free beyond what the unfinished uploads are owed. */
    private readonly minFree: number,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Bytes still owed to unfinished uploads (and to creations admitted, not yet recorded). */
  get owed(): number {
    return this.owedTotal + this.reserved;
  }

  /** Records an upload of known length with `written` bytes on disk (replacing what was known of it). */
  owe(id: string, size: number, written: number): void {
    this.forget(id);
    if (written >= size) return;
    this.uploads.set(id, { size, written });
    this.owedTotal += size - written;
  }

  /**
   * An upload written in segments, in any order (the resumable mode): `received` of its `size` bytes
   * are on disk, wherever they sit. Only this moves it: its file's end says nothing of the holes
   * before it, so progress() leaves it alone.
   */
  segments(id: string, size: number, received: number): void {
    const before = this.uploads.get(id);
    // Received since it was last known here: on disk, not yet in the statfs sample.
    if (before) this.writtenSinceSample += received - before.written;
    this.forget(id);
    if (received >= size) return;
    this.uploads.set(id, { size, written: received, segmented: true });
    this.owedTotal += size - received;
  }

  /** The upload's file now ends at `position` (after a write, or a cut back to a checksum's start). */
  progress(id: string, position: number): void {
    const u = this.uploads.get(id);
    if (!u || u.segmented) return;
    const to = Math.min(position, u.size);
    this.owedTotal -= to - u.written;
    this.writtenSinceSample += to - u.written;
    u.written = to;
    if (to === u.size) this.uploads.delete(id);
  }

  /** The upload is gone (removed, expired, finished): it is owed nothing. */
  forget(id: string): void {
    const u = this.uploads.get(id);
    if (!u) return;
    this.owedTotal -= u.size - u.written;
    this.uploads.delete(id);
  }

  /**
   * A write met a full disk (`what` says which): the sample is stale, the next admission samples
   * again. Logged at most once a minute, with how many more there were.
   */
  sawFull(what: string): void {
    this.sample = undefined;
    this.fullSinceLog++;
    if (Date.now() - this.lastFullLog < 60_000) return;
    const more = this.fullSinceLog > 1 ? ` (and ${this.fullSinceLog - 1} more in the last minute)` : '';
    this.log(`space: the store's disk is full: ${what}; answered 507 ERR_STORAGE_FULL${more}`);
    this.lastFullLog = Date.now();
    this.fullSinceLog = 0;
  }

  /**
   * Admits `bytes` more to the store or throws 507 ERR_STORAGE_FULL. The bytes are reserved until the
   * returned function is called (once the upload they are for is recorded, or its request is over):
   * the check and the reservation happen in one step, so concurrent creations cannot all pass on
   * the same free space.
   */
  async admit(bytes: number): Promise<() => void> {
    const free = (await this.free()) - this.writtenSinceSample;
    const room = free - this.owed - this.minFree;
    if (bytes > room) throw storageFull(`${bytes} bytes do not fit (uploads in progress and MIN_FREE_SPACE are kept)`);
    this.reserved += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reserved -= bytes;
    };
  }

  /** The store's free space (bytes available to us), sampled at most once per SAMPLE_MS. */
  private async free(): Promise<number> {
    if (this.sample && Date.now() - this.sample.at < SAMPLE_MS) return this.sample.free;
    // Concurrent admissions share one statfs.
    this.sampling ??= new Promise<number>((resolve, reject) =>
      fs.statfs(this.dir, (e, s) => {
        this.sampling = undefined;
        if (e) return reject(e);
        this.sample = { free: s.bavail * s.bsize, at: Date.now() };
        this.writtenSinceSample = 0;
        resolve(this.sample.free);
      }),
    );
    return this.sampling;
  }
}

/** What the gate needs of the notice queue (hooks/queue.ts NoticeQueue). */
export interface QueueGauge {
  isFull(): boolean;
}

/** Seconds a client is asked to wait when the notice queue is full. */
const QUEUE_RETRY_AFTER_S = 60;

/** Reservations of admitted creations, released by the store's POST_CREATE (tus-server.ts) or the response's end. */
const admitted = new WeakMap<IncomingMessage, () => void>();

/** The creation this request made is recorded in the ledger now: its reservation is no longer needed. */
export function creationRecorded(req: IncomingMessage): void {
  admitted.get(req)?.();
}

/**
 * POST /files/: refuses a creation with 503 ERR_QUEUE_FULL + Retry-After while the notice queue is
 * full (back-pressure instead of dropping notices), and with 507 ERR_STORAGE_FULL when the store
 * cannot hold its Upload-Length. Finals are checked by final-handler.ts once their total is known;
 * a deferred length when a PATCH declares it (DigestFileStore.declareUploadLength).
 */
export function creationGate(deps: { space: SpaceLedger; queue: QueueGauge; log: (line: string) => void }): express.RequestHandler {
  return async (req, res, next) => {
    try {
      if (deps.queue.isFull()) {
        throw Object.assign(new TuspassError(ERRORS.ERR_QUEUE_FULL), { headers: { 'Retry-After': String(QUEUE_RETRY_AFTER_S) } });
      }
      if (concatRoleOf(req) === 'final') return next();
      // A malformed length is @tus/server's to refuse (400); a deferred one is 0 bytes for now.
      const release = await deps.space.admit(nonNegativeInteger(req.get('upload-length')) ?? 0);
      admitted.set(req, release);
      res.once('close', release);
      next();
    } catch (e) {
      if (e instanceof TuspassError) deps.log(`tus POST ${req.originalUrl}: ${e.code}: ${e.message}`);
      sendTusError(res, req, e, deps.log);
    }
  };
}
