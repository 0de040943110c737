// A durable queue of notices (completion forms that could not be delivered, post-* hook events).
// Each notice is one JSON file in the queue directory, written atomically before enqueue() returns,
// so a notice survives a crash or restart; it is removed only once delivered. Delivery is at least
// once: every notice carries an id that stays the same across retries, for the receiver to drop
// duplicates. Retries back off exponentially from minMs to maxMs.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface Notice<T = unknown> {
  id: string;
  kind: string;
  payload: T;
  attempts: number;
  createdAt: string;
  nextAt: number;
  lastError?: string;
}

/** What a delivery attempt says: done (remove it), or try again later with the reason. */
export type DeliveryResult = { done: true } | { done: false; error: string };
export type Deliver = (notice: Notice) => Promise<DeliveryResult>;

export interface QueueOptions {
  dir: string;
  minMs: number;
  maxMs: number;
  /** Notices delivered at the same time. */
  concurrency?: number;
  /** Most notices held before isFull() says so (QUEUE_MAX); new creations are then refused. Default Infinity. */
  max?: number;
  log?: (message: string) => void;
}

export class NoticeQueue {
  private readonly notices = new Map<string, Notice>();
  private readonly running = new Set<string>();
  private readonly deliverers = new Map<string, Deliver>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();

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
    await fs.mkdir(this.options.dir, { recursive: true });
    for (const name of await fs.readdir(this.options.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const notice = JSON.parse(await fs.readFile(path.join(this.options.dir, name), 'utf8')) as Notice;
        notice.nextAt = Date.now();
        this.notices.set(notice.id, notice);
      } catch (e) {
        this.log(`queue: skipping unreadable notice file ${name}: ${(e as Error).message}`);
      }
    }
    this.schedule();
  }

  /**
   * Stores a notice durably, then delivers it as soon as possible — or, when the caller already tried
   * once and failed (`failedWith`), after the first backoff delay. Returns its id.
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
    this.notices.set(id, notice);
    this.schedule();
    return id;
  }

  /** Notices not yet delivered (for status pages and tests). */
  pending(): Notice[] {
    return [...this.notices.values()];
  }

  /** Whether the queue holds its cap of notices or more: new uploads are refused until it drains (back-pressure). */
  isFull(): boolean {
    return this.notices.size >= (this.options.max ?? Infinity);
  }

  /** Resolves once the queue is empty (or the timeout passes: false). */
  async drained(timeoutMs = 30_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.notices.size > 0) {
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inflight]);
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const now = Date.now();
    const limit = this.options.concurrency ?? 4;
    const due = [...this.notices.values()].filter((n) => !this.running.has(n.id)).sort((a, b) => a.nextAt - b.nextAt);
    for (const notice of due) {
      if (this.running.size >= limit || notice.nextAt > now) break;
      this.run(notice);
    }
    const next = due.find((n) => !this.running.has(n.id));
    if (next && this.running.size < limit) {
      this.timer = setTimeout(() => this.schedule(), Math.max(0, next.nextAt - Date.now()));
      this.timer.unref();
    }
  }

  private run(notice: Notice): void {
    this.running.add(notice.id);
    const p = this.attempt(notice).finally(() => {
      this.running.delete(notice.id);
      this.inflight.delete(p);
      this.schedule();
    });
    this.inflight.add(p);
  }

  private async attempt(notice: Notice): Promise<void> {
    const deliver = this.deliverers.get(notice.kind) ?? this.deliverers.get(`${notice.kind.slice(0, notice.kind.indexOf(':') + 1)}*`);
    let result: DeliveryResult;
    try {
      result = deliver ? await deliver(notice) : { done: false, error: `no deliverer for kind ${notice.kind}` };
    } catch (e) {
      result = { done: false, error: (e as Error).message };
    }
    if (result.done) {
      this.notices.delete(notice.id);
      await fs.rm(this.file(notice.id), { force: true });
      if (notice.attempts > 0 || this.waiting(notice.kind)) this.wake(notice.kind);
      return;
    }
    notice.attempts += 1;
    notice.lastError = result.error;
    const delay = Math.min(this.options.maxMs, this.options.minMs * 2 ** Math.min(notice.attempts - 1, 30));
    // Jitter (±20%) keeps many notices queued during one outage from retrying in lockstep.
    notice.nextAt = Date.now() + Math.round(delay * (0.8 + Math.random() * 0.4));
    this.log(`queue: ${notice.kind} notice ${notice.id} attempt ${notice.attempts} failed (${result.error}); retry in ${delay} ms`);
    if (!this.closed) await this.persist(notice);
  }

  /** Whether notices of this kind are waiting out a backoff. */
  private waiting(kind: string): boolean {
    const now = Date.now();
    for (const n of this.notices.values()) if (n.kind === kind && n.attempts > 0 && n.nextAt > now) return true;
    return false;
  }

  /**
   * A delivery of this kind just worked, so its receiver is back: the other notices of the kind stop
   * waiting out their backoff (which may have grown to minutes during an outage) and go now.
   */
  private wake(kind: string): void {
    const now = Date.now();
    for (const n of this.notices.values()) if (n.kind === kind && n.nextAt > now) n.nextAt = now;
  }

  private async persist(notice: Notice): Promise<void> {
    const file = this.file(notice.id);
    const tmp = `${file}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(notice));
    await fs.rename(tmp, file);
  }

  private file(id: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new Error(`queue: invalid notice id ${JSON.stringify(id)}`);
    return path.join(this.options.dir, `${id}.json`);
  }

  private log(message: string): void {
    (this.options.log ?? console.error)(message);
  }
}
