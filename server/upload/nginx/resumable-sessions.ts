// The resumable sessions this instance knows: the ones it opened, joined or found at start. The
// truth of a session is its state file (session-state.ts), read under the session's lock; this index
// holds what the cap on open sessions counts, and queues the segments of one session that reach this
// instance, so they wait their turn here rather than in the locker.
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { DigestFileStore } from '../../backends/store/digest-store.ts';
import { bytesIn, coversAll } from './byte-ranges.ts';
import { sessionKey, type SessionRecord, type SessionStates } from './session-state.ts';

interface Known {
  /** '' while the session is being opened (its place in the cap is taken already). */
  uploadId: string;
  holder: string;
  /** When the session last moved, as this instance saw it. */
  touched: number;
}

/** Seconds a caller refused for the cap is asked to wait. */
const RETRY_AFTER_S = 60;

const sessionsFull = (detail: string) =>
  Object.assign(new TuspassError(ERRORS.ERR_RESUMABLE_SESSIONS_FULL, undefined, detail), {
    headers: { 'Retry-After': String(RETRY_AFTER_S) },
  });

export class ResumableSessions {
  private readonly known = new Map<string, Known>();
  private readonly tails = new Map<string, Promise<void>>();
  /** What each upload written in segments received, by the states found at start (for the ledger). */
  private readonly receivedAtStart = new Map<string, number>();

  /**
   * Sessions hold files: capped (RESUMABLE_SESSIONS_MAX), so Session-IDs cannot be made up without
   * end, and one holder (a token's subject, or an anonymous client's address) holds at most a tenth
   * of the cap, so one caller cannot fill it for everyone.
   */
  constructor(
    readonly max: number,
    readonly states: SessionStates,
  ) {}

  private get share(): number {
    return Math.max(1, Math.floor(this.max / 10));
  }

  /**
   * The sessions of the last run (at start, before anything listens). A state whose upload is gone or
   * settled goes. A state whose ranges cover its upload (the process stopped between the last
   * segment and the completion) is settled now: a finished upload like any other, announced by the
   * start-up pass. The others are open again.
   */
  async restore(store: DigestFileStore, shared: boolean): Promise<void> {
    for (const r of await this.states.load(shared)) {
      const segments = await store.segmentsOf(r.uploadId);
      if (segments === 'open' && coversAll(r.ranges, r.total)) await store.settleSegments(r.uploadId);
      if (segments !== 'open' || coversAll(r.ranges, r.total)) {
        await this.states.remove(r);
        continue;
      }
      this.known.set(sessionKey(r), { uploadId: r.uploadId, holder: r.holder, touched: r.touched });
      this.receivedAtStart.set(r.uploadId, bytesIn(r.ranges));
    }
  }

  /** The bytes a session found at start has received (the start-up pass owes it the rest). */
  receivedBy(uploadId: string): number | undefined {
    return this.receivedAtStart.get(uploadId);
  }

  /** Runs `work` once the work queued before it under this key in this process is over. */
  async serial<T>(key: string, work: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).then(work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /**
   * Takes a place for a new session of `holder` under `key`, or throws 503 ERR_RESUMABLE_SESSIONS_FULL
   * with Retry-After. The place is the session's once opened(), free again with forget().
   */
  async reserve(key: string, holder: string): Promise<void> {
    // What was known under this key is over (the caller found no open session there).
    this.known.delete(key);
    if (this.refusal(holder)) await this.prune();
    const refused = this.refusal(holder);
    if (refused) throw sessionsFull(refused);
    this.known.set(key, { uploadId: '', holder, touched: Date.now() });
  }

  /** The session under `key` is open (or moved), as its state says. */
  note(key: string, record: SessionRecord): void {
    this.known.set(key, { uploadId: record.uploadId, holder: record.holder, touched: record.touched });
  }

  forget(key: string): void {
    this.known.delete(key);
  }

  /**
   * Sessions idle past `periodMs`, as this instance saw them: handed to `expire` (which looks at the
   * state under the session's lock: another instance may have moved it since) and forgotten here.
   */
  sweep(periodMs: number, expire: (key: string) => void): void {
    const now = Date.now();
    for (const [key, s] of this.known) {
      if (!s.uploadId || now - s.touched <= periodMs) continue;
      this.known.delete(key);
      expire(key);
    }
  }

  get size(): number {
    return this.known.size;
  }

  private refusal(holder: string): string | undefined {
    if (this.known.size >= this.max) return `${this.known.size} sessions open`;
    let held = 0;
    for (const s of this.known.values()) if (s.holder === holder) held++;
    return held >= this.share ? `${held} sessions of one caller open (a tenth of the cap)` : undefined;
  }

  /** Sessions another instance completed or swept are forgotten here (looked up only when the cap is reached). */
  private async prune(): Promise<void> {
    for (const [key, s] of [...this.known]) {
      if (!s.uploadId) continue;
      const state = await this.states.read(key).catch(() => undefined);
      if (state?.uploadId !== s.uploadId && this.known.get(key) === s) this.known.delete(key);
    }
  }
}
