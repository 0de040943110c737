// The free-space ledger: what the store can still take, and who holds what of it. Every way bytes
// reach the store goes through it (DigestFileStore calls it; no route keeps its own count):
//
//   creation (tus, final, multipart part, resumable session)  store.create  → open()
//   a deferred length declared (tus PATCH, a multipart part's end)  store.declareUploadLength → declare()
//   every append of bytes (tus PATCH, creation-with-upload, multipart parts, resumable segments
//   at the front, concatenation)  append.ts → body() → before() / written() / end()
//
// Free space: the store's free space (statfs), less the bytes owed to unfinished uploads (their
// declared lengths not yet written) and the bytes admitted ahead to bodies of unknown length, less
// MIN_FREE_SPACE, must hold what is admitted — otherwise 507 ERR_STORAGE_FULL. statfs is sampled at
// most once a second; the bytes written since the sample are subtracted from it, so a burst of
// writes does not make the sample optimistic.
//
// Per owner (the creating token's `sub`, or the client's address when anonymous: upload-owner.ts):
// at most OWNER_MAX_OPEN unfinished uploads, and at most OWNER_MAX_OWED bytes declared and not yet
// received — otherwise 429 (admission.ts says why 429). A body of unknown length is not "declared":
// its bytes are admitted against the free space only, as they arrive.
//
// The ledger is in memory: built by the start-up pass over the store (restore()), then kept up to
// date by the store on every creation, write, declared length and removal (expiry included).
//
// The S3 store (s3/s3-store.ts) keeps one too, for the per-owner limits alone: no disk holds its
// uploads (`disk` undefined), so the space uploads may use is unbounded there — nothing is refused
// 507 and a body of unknown length is admitted whole — and OWNER_MAX_OWED is a size (a share of
// unbounded space means nothing: config.ts refuses it with S3_BUCKET).
import fs from 'node:fs';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { SizeOrShare } from '../../../core/parse.ts';

/** "No space" errors of the file system: the disk, or the user's quota, is full. */
export const isNoSpace = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
};

/**
 * 507 ERR_STORAGE_FULL with a plain message and no path. (`status_code` and `body` are what
 * @tus/server's own answer would read; every error answer goes through the error responder,
 * http/error-answer.ts, which takes it as the TuspassError it is.)
 */
export function storageFull(detail?: string): TuspassError & { status_code: number; body: string } {
  const e = new TuspassError(ERRORS.ERR_STORAGE_FULL, detail);
  return Object.assign(e, { status_code: e.status, body: `${e.code}: ${e.message}\n` });
}

/** How long a statfs sample is used. Measured: a statfs costs ~10 µs of a libuv thread. */
const SAMPLE_MS = 1000;

/** A body of unknown length is admitted this far ahead of its writes (or less, when less is left). */
export const BODY_STEP = 8 * 2 ** 20;

export interface OwnerLimits {
  /** OWNER_MAX_OWED: bytes, or a share of the space uploads may use (free space less MIN_FREE_SPACE); 0 bytes or 100%:
   * no limit. */
  maxOwed: SizeOrShare;
  /** OWNER_MAX_OPEN: unfinished uploads one owner may hold; 0 = no limit. */
  maxOpen: number;
}

export const NO_OWNER_LIMITS: OwnerLimits = { maxOwed: { bytes: 0 }, maxOpen: 0 };

/**
 * One unfinished upload: its owner's key, its length (undefined while deferred) and the bytes on
 * disk; `segmented` when written in segments in any order (the resumable mode: see segments()).
 */
interface Entry {
  owner: string | undefined;
  size: number | undefined;
  written: number;
  segmented?: true;
}

interface OwnerTotals {
  /** Declared and not yet received, over the owner's unfinished uploads. */
  owed: number;
  open: number;
}

/**
 * The admission of one body of unknown length (an append to an upload the ledger owes nothing):
 * bytes are admitted before they are written, BODY_STEP (or the body's announced length) at a time.
 */
export interface BodyAdmission {
  /**
   * Before a byte is read: throws 507 when the body's announced `bytes` (its Content-Length) do not
   * fit now. Holds nothing: what a body holds of the store is admitted as it is written (before()).
   */
  fits(bytes: number): Promise<void>;
  /** Before the bytes up to file position `end` are written: admits what is not yet, or throws 507. */
  before(end: number): Promise<void>;
  /** The file now ends at `position` (after a write, or cut back to a checksum's start). */
  written(position: number): void;
  /** The body is over: what was admitted and not written is released. */
  end(): void;
}

export class SpaceLedger {
  private readonly uploads = new Map<string, Entry>();
  private readonly owners = new Map<string, OwnerTotals>();
  /** Σ (size − written) over the unfinished uploads of known length. */
  private owedTotal = 0;
  /** Bytes admitted ahead to bodies of unknown length, not written yet. */
  private aheadTotal = 0;
  private sample: { free: number; at: number } | undefined;
  private sampling: Promise<number> | undefined;
  /** Bytes written to uploads since the sample was taken (not yet visible in it). */
  private writtenSinceSample = 0;

  private lastFullLog = -Infinity;
  private fullSinceLog = 0;

  constructor(
    /** The directory whose file system holds the uploads (statfs); undefined: no disk bounds them (S3). */
    readonly disk: string | undefined,
    /** MIN_FREE_SPACE: kept free beyond what the unfinished uploads are owed. */
    private readonly minFree: number,
    private readonly log: (line: string) => void = () => {},
    private readonly limits: OwnerLimits = NO_OWNER_LIMITS,
  ) {}

  /** Bytes still owed to unfinished uploads and admitted ahead to bodies being written. */
  get owed(): number {
    return this.owedTotal + this.aheadTotal;
  }

  /** What one owner holds: bytes declared and not received, unfinished uploads. */
  ownerTotals(owner: string): Readonly<OwnerTotals> {
    return this.owners.get(owner) ?? { owed: 0, open: 0 };
  }

  /**
   * Bytes the store can still admit (negative: the reserve is already crossed; Infinity without a
   * disk). What /readyz reads.
   */
  async room(): Promise<number> {
    return (await this.usable()) - this.owed;
  }

  /**
   * The early answer of a gate, before any hook runs: throws what open() would throw now for a new
   * upload of `bytes` by `owner`. Reserves nothing: open() decides, atomically, when the upload is made.
   */
  async check(bytes: number, owner: string | undefined): Promise<void> {
    const usable = await this.usable();
    const refused = this.refusal(usable, bytes, owner, true);
    if (refused) throw refused;
  }

  /**
   * A new upload (`size` undefined: deferred) is admitted and recorded in one step, so concurrent
   * creations cannot all pass on the same free space or the same owner's share. Throws 507
   * ERR_STORAGE_FULL or 429 ERR_OWNER_*_LIMIT.
   */
  async open(id: string, owner: string | undefined, size: number | undefined): Promise<void> {
    const usable = await this.usable();
    const refused = this.refusal(usable, size ?? 0, owner, true);
    if (refused) throw refused;
    // Empty: finished as it is created. Known already: the id is taken, this creation fails
    // (new-upload.ts) and the upload that has it stays as recorded.
    if (size === 0 || this.uploads.has(id)) return;
    this.record(id, { owner, size, written: 0 });
  }

  /** An upload found in the store at start (or made elsewhere): recorded as it is, unchecked. */
  restore(id: string, owner: string | undefined, size: number | undefined, written: number): void {
    this.forget(id);
    if (size !== undefined && written >= size) return;
    this.record(id, { owner, size, written });
  }

  /**
   * A deferred length is declared with `written` bytes on disk: the bytes still to come are admitted
   * (free space and the owner's share) and owed from now on. Throws 507 or 429; nothing changes then.
   */
  async declare(id: string, size: number, written: number): Promise<void> {
    const entry = this.uploads.get(id);
    const owner = entry?.owner;
    // A length equal to what was written (a multipart part's end, a deferred upload's last PATCH)
    // asks for nothing: never refused, even on a store past its reserve.
    if (size > written) {
      const refused = this.refusal(await this.usable(), size - written, owner, false);
      if (refused) throw refused;
    }
    this.forget(id);
    if (written < size) this.record(id, { owner, size, written });
  }

  /** The upload's file now ends at `position`: bytes written are no longer owed (or, cut back, owed again). */
  progress(id: string, position: number): void {
    const u = this.uploads.get(id);
    if (u && !u.segmented) this.wrote(id, u, position);
  }

  /**
   * An upload written in segments, in any order (the resumable mode): `received` of its bytes are on
   * disk, wherever they sit. From then on only this moves it: progress() (its appends at the front)
   * leaves it alone, as its file's end says nothing of the holes before it.
   */
  segments(id: string, received: number): void {
    const u = this.uploads.get(id);
    if (!u) return;
    u.segmented = true;
    this.wrote(id, u, received);
  }

  /** `position` bytes of the upload are on disk now. */
  private wrote(id: string, u: Entry, position: number): void {
    const to = u.size === undefined ? position : Math.min(position, u.size);
    const delta = to - u.written;
    this.writtenSinceSample += delta;
    if (u.size !== undefined) {
      this.owedTotal -= delta;
      if (u.owner !== undefined) this.owners.get(u.owner)!.owed -= delta;
    }
    u.written = to;
    if (to === u.size) this.forget(id);
  }

  /** The upload is gone (removed, expired, finished): it is owed nothing and no longer open. */
  forget(id: string): void {
    const u = this.uploads.get(id);
    if (!u) return;
    this.uploads.delete(id);
    const owed = u.size === undefined ? 0 : u.size - u.written;
    this.owedTotal -= owed;
    if (u.owner === undefined) return;
    const totals = this.owners.get(u.owner)!;
    totals.owed -= owed;
    if (--totals.open === 0) this.owners.delete(u.owner);
  }

  /** Files were removed from the store: the sample no longer says how much is free; the next admission takes one. */
  freed(): void {
    this.sample = undefined;
  }

  /**
   * The admission of one append at `offset` (append.ts). An upload of known length is owed
   * already: nothing more to admit. Otherwise (a deferred length, a multipart part, an upload this
   * process does not know) the bytes are admitted as they come, BODY_STEP at a time (or what is
   * left of `expected`, the body's Content-Length, when less). Not the whole Content-Length at once:
   * it is a number the client writes, and a body that announces most of the store and then sends a
   * byte now and then would hold all of it for as long as its connection lives (no owner's share
   * counts bytes admitted ahead). A body that cannot fit whole is still refused first (fits()).
   */
  body(id: string, offset: number, expected?: number): BodyAdmission {
    if (this.uploads.get(id)?.size !== undefined) {
      return {
        fits: async () => {},
        before: async () => {},
        written: (position) => this.progress(id, position),
        end: () => {},
      };
    }
    /** Admitted up to this file position. */
    let covered = offset;
    /** Admitted and not written yet. */
    let ahead = 0;
    let at = offset;
    return {
      fits: async (bytes) => {
        if (bytes > (await this.room()))
          throw storageFull(`the body's ${bytes} bytes do not fit (uploads in progress and MIN_FREE_SPACE are kept)`);
      },
      before: async (end) => {
        if (end <= covered) return;
        const need = end - covered;
        const step = expected !== undefined ? Math.min(BODY_STEP, offset + expected - covered) : BODY_STEP;
        const taken = await this.admitAhead(need, Math.max(need, step));
        covered += taken;
        ahead += taken;
      },
      written: (position) => {
        this.progress(id, position);
        const used = Math.min(Math.max(0, position - at), ahead);
        ahead -= used;
        this.aheadTotal -= used;
        at = position;
      },
      end: () => {
        this.aheadTotal -= ahead;
        ahead = 0;
      },
    };
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

  /** Admits at least `need` and up to `want` bytes ahead of a body's writes; returns how many, or throws 507. */
  private async admitAhead(need: number, want: number): Promise<number> {
    const room = (await this.usable()) - this.owed;
    if (need > room)
      throw storageFull(`the body would go into the reserve (MIN_FREE_SPACE); the bytes written so far are kept`);
    const taken = Math.min(want, room);
    this.aheadTotal += taken;
    return taken;
  }

  /** Why a new upload or a declared length (`opening`: a new upload) of `bytes` by `owner` is refused, if it is. */
  private refusal(
    usable: number,
    bytes: number,
    owner: string | undefined,
    opening: boolean,
  ): TuspassError | undefined {
    const totals = owner === undefined ? undefined : this.owners.get(owner);
    const { maxOpen, maxOwed } = this.limits;
    if (opening && maxOpen > 0 && (totals?.open ?? 0) >= maxOpen) {
      return new TuspassError(ERRORS.ERR_OWNER_UPLOADS_LIMIT, `${maxOpen} unfinished uploads (OWNER_MAX_OPEN)`);
    }
    if (bytes > usable - this.owed)
      return storageFull(`${bytes} bytes do not fit (uploads in progress and MIN_FREE_SPACE are kept)`);
    if (owner === undefined) return undefined;
    const limit = 'share' in maxOwed ? Math.floor(maxOwed.share * Math.max(0, usable)) : maxOwed.bytes;
    const limited = 'share' in maxOwed ? maxOwed.share < 1 : maxOwed.bytes > 0;
    if (limited && (totals?.owed ?? 0) + bytes > limit) {
      return new TuspassError(
        ERRORS.ERR_OWNER_SPACE_LIMIT,
        `${totals?.owed ?? 0} bytes still to come, ${bytes} more asked (OWNER_MAX_OWED)`,
      );
    }
    return undefined;
  }

  private record(id: string, entry: Entry): void {
    this.uploads.set(id, entry);
    const owed = entry.size === undefined ? 0 : entry.size - entry.written;
    this.owedTotal += owed;
    if (entry.owner === undefined) return;
    let totals = this.owners.get(entry.owner);
    if (!totals) this.owners.set(entry.owner, (totals = { owed: 0, open: 0 }));
    totals.owed += owed;
    totals.open++;
  }

  /**
   * The space uploads may use: free space (as sampled, less what was written since) less
   * MIN_FREE_SPACE; without a disk, unbounded.
   */
  private async usable(): Promise<number> {
    if (this.disk === undefined) return Number.POSITIVE_INFINITY;
    return (await this.free(this.disk)) - this.writtenSinceSample - this.minFree;
  }

  /** The store's free space (bytes available to us), sampled at most once per SAMPLE_MS. */
  private async free(disk: string): Promise<number> {
    if (this.sample && Date.now() - this.sample.at < SAMPLE_MS) return this.sample.free;
    // Concurrent admissions share one statfs.
    this.sampling ??= new Promise<number>((resolve, reject) =>
      fs.statfs(disk, (e, s) => {
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
