// A durable queue of notices (completion forms that could not be delivered, post-* hook events).
// Each notice is one JSON file in the queue directory, written atomically before enqueue() returns,
// so a notice survives a crash or restart; it is removed only once delivered. Delivery is at least
// once: every notice carries an id that stays the same across retries, for the receiver to drop
// duplicates. Retries back off exponentially from minMs to maxMs.
// Memory holds an index only (id, kind, attempts, when due), never payloads: a payload is read from
// its file when it is delivered. Measured before: with a receiver answering 503, 2,000 creations kept
// 2,000 payloads resident and grew the process from 79 to 197 MB. The queue is capped (`max`,
// QUEUE_MAX): at the cap isFull() says so and new uploads are refused (503 ERR_QUEUE_FULL), but
// enqueue() itself never refuses, so a notice for an upload already under way is never dropped.
import crypto from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Log, LogFields } from '../core/logger.ts';
import { PRIVATE_MODES, writeAtomically, type FileModes } from '../core/file-modes.ts';
import { makeDirectory } from '../core/make-directory.ts';
import { deliverNotice, NOTICE_ID, type Deliver, type Notice, type Notices, type QueuedNotice } from './notices.ts';
import { errorText } from '../core/logger.ts';

export interface QueueOptions {
  dir: string;
  minMs: number;
  maxMs: number;
  /** Notices delivered at the same time. */
  concurrency?: number;
  /** Most notices held before isFull() says so (QUEUE_MAX); new creations are then refused. Default Infinity. */
  max?: number;
  log?: Log;
  /** Modes of the queue's directory and notice files (core/file-modes.ts). Default 0700 / 0600. */
  fileModes?: FileModes;
}

export class NoticeQueue implements Notices {
  private readonly index = new Map<string, QueuedNotice>();
  private readonly running = new Set<string>();
  private readonly deliverers = new Map<string, Deliver>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();
  /** Payloads read from disk and held right now (the deliveries under way): at most `concurrency`. */
  private resident = 0;

  constructor(private readonly options: QueueOptions) {}

  /**
   * Registers how notices of one kind are delivered. A kind ending in `:*` catches the kinds with that
   * prefix that have no deliverer of their own (e.g. notices for a hook no longer configured).
   */
  handle(kind: string, deliver: Deliver): void {
    this.deliverers.set(kind, deliver);
  }

  /** Loads the notices left from an earlier run and starts delivering. */
  async start(): Promise<void> {
    const modes = this.options.fileModes ?? PRIVATE_MODES;
    makeDirectory(this.options.dir, modes.dir);
    await fs.chmod(this.options.dir, modes.dir);
    for (const name of await fs.readdir(this.options.dir)) {
      // A write the process or the disk cut short (crash, ENOSPC) left only its temporary file; an
      // admin command's marker for a server that was not running is moot now (every notice is due).
      if (name.endsWith('.tmp') || name.endsWith(RETRY_MARK) || name.endsWith(DROP_MARK)) {
        await fs.rm(path.join(this.options.dir, name), { force: true }).catch(() => {});
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const { payload: _payload, ...entry } = JSON.parse(
          await fs.readFile(path.join(this.options.dir, name), 'utf8'),
        ) as Notice;
        entry.nextAt = Date.now();
        this.index.set(entry.id, entry);
      } catch (e) {
        this.log(`queue: skipping unreadable notice file ${name}: ${errorText(e)}`);
      }
    }
    this.watchMarkers();
    this.schedule();
  }

  /**
   * Stores a notice durably, then delivers it as soon as possible — or, when the caller already tried
   * once and failed (`failedWith`), after the first backoff delay. Returns its id. Throws when the
   * notice cannot be stored (a full disk): nothing of it is left behind then.
   */
  async enqueue<T>(kind: string, payload: T, options: { id?: string; failedWith?: string } = {}): Promise<string> {
    const id = options.id ?? crypto.randomUUID();
    const failed = options.failedWith !== undefined;
    const notice: Notice<T> = {
      id,
      kind,
      payload,
      attempts: failed ? 1 : 0,
      createdAt: new Date().toISOString(),
      nextAt: Date.now() + (failed ? this.options.minMs : 0),
      lastError: options.failedWith,
    };
    await this.persist(notice);
    this.index.set(id, withoutPayload(notice));
    this.schedule();
    return id;
  }

  /** Notices not yet delivered, without their payloads (for status pages and tests). */
  pending(): QueuedNotice[] {
    return [...this.index.values()].map((n) => ({ ...n }));
  }

  /** How many notices wait, and when the oldest was queued (ms since the epoch): for /metrics and /readyz. */
  stats(): { depth: number; oldestCreatedAt?: number } {
    let oldest = Infinity;
    for (const n of this.index.values()) {
      const at = Date.parse(n.createdAt);
      if (at < oldest) oldest = at;
    }
    return { depth: this.index.size, oldestCreatedAt: oldest === Infinity ? undefined : oldest };
  }

  /** How many payloads are in memory now: only those being delivered, never the whole queue. */
  residentPayloads(): number {
    return this.resident;
  }

  /** Whether the queue holds its cap of notices or more: new uploads are refused until it drains (back-pressure). */
  isFull(): boolean {
    return this.index.size >= (this.options.max ?? Infinity);
  }

  /** Resolves once the queue is empty (or the timeout passes: false). */
  async drained(timeoutMs = 30_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.index.size > 0) {
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  /**
   * `tuspass queue retry|drop ID` (server/admin/queue.ts) leaves a marker file, <id>.retry or
   * <id>.drop, in the queue directory: the running server's index follows at once (a retried notice
   * is due now, a dropped one leaves the index and the count QUEUE_MAX is checked against). One
   * inotify watch; the queue's own writes (.json, .tmp) are ignored by name, costing no syscall.
   */
  private watchMarkers(): void {
    try {
      this.watcher = watch(this.options.dir, (_event, name) => {
        if (typeof name !== 'string') return;
        if (name.endsWith(RETRY_MARK)) void this.marked(name.slice(0, -RETRY_MARK.length), RETRY_MARK);
        else if (name.endsWith(DROP_MARK)) void this.marked(name.slice(0, -DROP_MARK.length), DROP_MARK);
      });
      this.watcher.on('error', () => this.watcher?.close());
      this.watcher.unref();
    } catch (e) {
      this.log(
        `queue: not watching ${this.options.dir} for admin commands (${errorText(e)}); they act at the next start`,
      );
    }
  }

  private async marked(id: string, mark: string): Promise<void> {
    // Whoever removes the marker acts on it (the watch reports a marker more than once).
    try {
      await fs.rm(path.join(this.options.dir, id + mark));
    } catch {
      return;
    }
    const entry = this.index.get(id);
    if (!entry || this.closed) return;
    if (mark === DROP_MARK) {
      // A delivery under way finishes; failed() then finds it gone and writes no file back.
      this.index.delete(id);
      this.log(`queue: ${entry.kind} notice ${id} dropped by tuspass queue drop`, {
        event: 'queue.dropped',
        notice_id: id,
        kind: entry.kind,
      });
      return;
    }
    entry.nextAt = Date.now();
    this.log(`queue: ${entry.kind} notice ${id} due now (tuspass queue retry)`, {
      event: 'queue.retry',
      notice_id: id,
      kind: entry.kind,
    });
    this.schedule();
  }

  async close(): Promise<void> {
    this.watcher?.close();
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inflight]);
  }

  /**
   * Starts the earliest due notices while delivery slots are free, and sets a timer for the next one
   * due. One pass over the index (no sort of the whole queue each time a notice comes or goes).
   */
  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const limit = this.options.concurrency ?? 4;
    const free = limit - this.running.size;
    if (free <= 0) return; // a delivery ending calls schedule() again
    const now = Date.now();
    const picked: QueuedNotice[] = [];
    let nextAt = Infinity;
    for (const n of this.index.values()) {
      if (this.running.has(n.id)) continue;
      if (n.nextAt > now) {
        nextAt = Math.min(nextAt, n.nextAt);
        continue;
      }
      if (picked.length === free && n.nextAt >= picked[free - 1]!.nextAt) continue;
      let at = picked.length;
      while (at > 0 && picked[at - 1]!.nextAt > n.nextAt) at--;
      picked.splice(at, 0, n);
      if (picked.length > free) picked.pop();
    }
    for (const n of picked) this.run(n);
    if (this.running.size < limit && nextAt !== Infinity) {
      this.timer = setTimeout(() => this.schedule(), Math.max(0, nextAt - Date.now()));
      this.timer.unref();
    }
  }

  private run(entry: QueuedNotice): void {
    this.running.add(entry.id);
    const p = this.attempt(entry)
      .catch((e: Error) => this.log(`queue: ${entry.kind} notice ${entry.id}: ${e.message}`))
      .finally(() => {
        this.running.delete(entry.id);
        this.inflight.delete(p);
        this.schedule();
      });
    this.inflight.add(p);
  }

  private async attempt(entry: QueuedNotice): Promise<void> {
    let notice: Notice;
    try {
      notice = JSON.parse(await fs.readFile(this.file(entry.id), 'utf8')) as Notice;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || e instanceof SyntaxError) {
        // Gone or unreadable: nothing left to deliver; never retried forever.
        this.log(`queue: dropping ${entry.kind} notice ${entry.id}: its file cannot be read (${errorText(e)})`);
        this.index.delete(entry.id);
        return;
      }
      return this.failed(entry, undefined, `reading the notice: ${errorText(e)}`);
    }
    this.resident++;
    try {
      notice.attempts = entry.attempts;
      const result = await deliverNotice(this.deliverers, notice);
      if (result.done) {
        this.index.delete(entry.id);
        await fs
          .rm(this.file(entry.id), { force: true })
          .catch((e: Error) => this.log(`queue: removing delivered notice ${entry.id}: ${e.message}`));
        if (entry.attempts > 0 || this.waiting(entry.kind)) this.wake(entry.kind);
        return;
      }
      await this.failed(entry, notice, result.error);
    } finally {
      this.resident--;
    }
  }

  /** A failed attempt: the next one after the backoff; the file is updated when it can be (a full disk keeps the old
   * one). */
  private async failed(entry: QueuedNotice, notice: Notice | undefined, error: string): Promise<void> {
    entry.attempts += 1;
    entry.lastError = error;
    const delay = Math.min(this.options.maxMs, this.options.minMs * 2 ** Math.min(entry.attempts - 1, 30));
    // Jitter (±20%) keeps many notices queued during one outage from retrying in lockstep.
    entry.nextAt = Date.now() + Math.round(delay * (0.8 + Math.random() * 0.4));
    this.log(
      `queue: ${entry.kind} notice ${entry.id} attempt ${entry.attempts} failed (${error}); retry in ${delay} ms`,
      {
        event: entry.kind.startsWith('hook:') ? 'hook.failed' : 'notice.failed',
        level: 'warn',
        notice_id: entry.id,
        kind: entry.kind,
        attempts: entry.attempts,
        retry_in_ms: delay,
      },
    );
    if (this.closed || !notice || !this.index.has(entry.id)) return;
    await this.persist({ ...notice, ...entry }).catch((e: Error) =>
      this.log(`queue: updating notice ${entry.id}: ${e.message}`),
    );
  }

  /** Whether notices of this kind are waiting out a backoff. */
  private waiting(kind: string): boolean {
    const now = Date.now();
    for (const n of this.index.values()) if (n.kind === kind && n.attempts > 0 && n.nextAt > now) return true;
    return false;
  }

  /**
   * A delivery of this kind just worked, so its receiver is back: the other notices of the kind stop
   * waiting out their backoff (which may have grown to minutes during an outage) and go now.
   */
  private wake(kind: string): void {
    const now = Date.now();
    for (const n of this.index.values()) if (n.kind === kind && n.nextAt > now) n.nextAt = now;
  }

  /** Written whole or not at all: a write that fails (ENOSPC) leaves no temporary file behind. */
  private async persist(notice: Notice): Promise<void> {
    const file = this.file(notice.id);
    // Payloads carry upload metadata and request headers: the owner's (core/file-modes.ts).
    await writeAtomically(file, JSON.stringify(notice), (this.options.fileModes ?? PRIVATE_MODES).file);
  }

  private file(id: string): string {
    if (!NOTICE_ID.test(id)) throw new Error(`queue: invalid notice id ${JSON.stringify(id)}`);
    return path.join(this.options.dir, `${id}.json`);
  }

  private log(message: string, fields?: LogFields): void {
    (this.options.log ?? console.error)(message, fields);
  }
}

/** Marker files of `tuspass queue retry ID` and `tuspass queue drop ID` (beside <id>.json). */
export const RETRY_MARK = '.retry';
export const DROP_MARK = '.drop';

function withoutPayload(notice: Notice): QueuedNotice {
  const { payload: _payload, ...entry } = notice;
  return entry;
}
