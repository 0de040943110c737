// The notice queue on PostgreSQL (DATABASE_URL): one row per notice in `notices`, shared by every
// instance, so a notice queued by an instance that dies is delivered by another. A delivery claims its
// row with SELECT … FOR UPDATE SKIP LOCKED inside a transaction held while it is delivered: other
// instances skip the row, and if the deliverer dies its connection drops, PostgreSQL ends the
// transaction and the row is free again — at least once, with the notice's id the same on every
// attempt (the receiver drops duplicates by it). The back-off is the file queue's (hooks/queue.ts):
// from minMs doubling to maxMs, ±20% jitter; a delivery that works after failures makes the other
// waiting notices of its kind due at once. The schema: server/backends/pg/database.ts.
// While PostgreSQL does not answer, enqueue() still stores each notice durably before it returns: in
// this instance's spool (notice-spool.ts), moved into the table at the first look that finds
// PostgreSQL back. So a finished upload's form is never refused because the database is away.
import crypto from 'node:crypto';
import type pg from 'pg';
import type { Log, LogFields } from '../core/logger.ts';
import type { NoticeSpool } from './notice-spool.ts';
import { deliverNotice, type Deliver, type Notice, type Notices, type QueuedNotice } from './notices.ts';

export interface PgQueueOptions {
  pool: pg.Pool;
  minMs: number;
  maxMs: number;
  /** Notices delivered at the same time by this instance (each holds one connection while it is delivered). */
  concurrency?: number;
  /** QUEUE_MAX: counted over the whole shared queue. Default Infinity. */
  max?: number;
  /** How often the queue is looked at for notices due (others' included), and the counts refreshed. Default 1000. */
  pollMs?: number;
  /** Where notices wait while PostgreSQL does not answer; without one, enqueue() then throws. */
  spool?: NoticeSpool;
  log?: Log;
}

/** A notice as a row of the notices table (also read by `tuspass queue` with DATABASE_URL). */
export interface NoticeRow {
  id: string;
  kind: string;
  payload: unknown;
  attempts: number;
  created_at: Date;
  next_at: Date;
  last_error: string | null;
}

/** How much of the queue pending() shows: enough for status pages and tests, never the whole table in memory. */
const PENDING_SHOWN = 1000;

const toEntry = (r: Omit<NoticeRow, 'payload'>): QueuedNotice => ({
  id: r.id,
  kind: r.kind,
  attempts: r.attempts,
  createdAt: r.created_at.toISOString(),
  nextAt: r.next_at.getTime(),
  ...(r.last_error === null ? {} : { lastError: r.last_error }),
});

export class PgNoticeQueue implements Notices {
  private readonly deliverers = new Map<string, Deliver>();
  private readonly inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private started = false;
  /** The last delivery failure logged. */
  private lastFailure = '';
  /** The spool being moved into the table, while it is. */
  private moving: Promise<void> | undefined;
  /** The last look at the whole queue (pending(), stats(), isFull() are synchronous). */
  private snapshot: { depth: number; oldestCreatedAt?: number; pending: QueuedNotice[] } = { depth: 0, pending: [] };

  constructor(private readonly options: PgQueueOptions) {}

  handle(kind: string, deliver: Deliver): void {
    this.deliverers.set(kind, deliver);
  }

  async start(): Promise<void> {
    this.started = true;
    await this.options.spool?.open();
    await this.refresh().catch((e: Error) =>
      this.log(
        `queue: PostgreSQL does not answer (${e.message}); looking again every ${this.options.pollMs ?? 1000} ms`,
        { level: 'warn' },
      ),
    );
    this.poll();
  }

  async enqueue<T>(kind: string, payload: T, options: { id?: string; failedWith?: string } = {}): Promise<string> {
    const failed = options.failedWith !== undefined;
    const notice: Notice<T> = {
      id: options.id ?? crypto.randomUUID(),
      kind,
      payload,
      attempts: failed ? 1 : 0,
      createdAt: new Date().toISOString(),
      nextAt: Date.now() + (failed ? this.options.minMs : 0),
      ...(options.failedWith !== undefined && { lastError: options.failedWith }),
    };
    let added: boolean;
    try {
      added = await this.insert(notice);
    } catch (e) {
      const spool = this.options.spool;
      if (!spool) throw e;
      await spool.put(notice);
      this.log(
        `queue: PostgreSQL does not answer (${(e as Error).message}); ${kind} notice ${notice.id} kept in this ` +
          `instance's spool until it does`,
        { event: 'notice.spooled', level: 'warn', notice_id: notice.id, kind },
      );
      return notice.id;
    }
    if (added) {
      this.snapshot.depth += 1;
      this.snapshot.oldestCreatedAt ??= Date.now();
    }
    if (!failed) this.poll();
    return notice.id;
  }

  /** One row; a notice stored again under its id (a completion handled again, a spooled one moved twice) stays one. */
  private async insert(notice: Notice): Promise<boolean> {
    const r = await this.options.pool.query(
      `INSERT INTO notices (id, kind, payload, attempts, next_at, last_error, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
      [
        notice.id,
        notice.kind,
        JSON.stringify(notice.payload),
        notice.attempts,
        new Date(notice.nextAt),
        notice.lastError ?? null,
        new Date(notice.createdAt),
      ],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** Moves the spooled notices into the table, once PostgreSQL answers; one pass at a time. */
  private moveSpooled(): void {
    const spool = this.options.spool;
    if (!spool?.size || this.moving) return;
    this.moving = spool
      .drain((notice) => this.insert(notice).then(() => undefined))
      .then(
        (n) => {
          if (n)
            this.log(`queue: PostgreSQL answers again; ${n} spooled notice(s) moved into it`, {
              event: 'notice.unspooled',
              count: n,
            });
        },
        () => {},
      )
      .finally(() => (this.moving = undefined));
  }

  pending(): QueuedNotice[] {
    return this.snapshot.pending.map((n) => ({ ...n }));
  }

  stats(): { depth: number; oldestCreatedAt?: number } {
    return {
      depth: this.snapshot.depth + (this.options.spool?.size ?? 0),
      oldestCreatedAt: this.snapshot.oldestCreatedAt,
    };
  }

  isFull(): boolean {
    return this.stats().depth >= (this.options.max ?? Infinity);
  }

  async drained(timeoutMs = 30_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      await this.refresh();
      if (this.stats().depth === 0) return true;
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inflight, this.moving]);
  }

  /** Counts and the first rows of the whole queue, every instance's notices. */
  private async refresh(): Promise<void> {
    const [count, rows] = await Promise.all([
      this.options.pool.query<{ depth: string; oldest: Date | null }>(
        'SELECT count(*) AS depth, min(created_at) AS oldest FROM notices',
      ),
      this.options.pool.query<Omit<NoticeRow, 'payload'>>(
        'SELECT id, kind, attempts, created_at, next_at, last_error FROM notices ORDER BY created_at, id LIMIT $1',
        [PENDING_SHOWN],
      ),
    ]);
    const oldest = count.rows[0]?.oldest;
    this.snapshot = {
      depth: Number(count.rows[0]?.depth ?? 0),
      oldestCreatedAt: oldest ? oldest.getTime() : undefined,
      pending: rows.rows.map(toEntry),
    };
  }

  /** Looks for due notices now, and again after pollMs: others' notices, and retries come due. */
  private poll(): void {
    if (this.closed || !this.started) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), this.options.pollMs ?? 1000);
    this.timer.unref();
    this.moveSpooled();
    const free = (this.options.concurrency ?? 4) - this.inflight.size;
    // One claim per free slot; each takes the earliest due row no other delivery holds.
    for (let i = 0; i < free; i++) {
      const p: Promise<void> = this.claimOne()
        .then((claimed) => {
          this.inflight.delete(p);
          this.lastFailure = '';
          if (claimed) this.poll(); // there may be more due
        })
        .catch((e: Error) => {
          this.inflight.delete(p);
          // PostgreSQL away: said once, not by every claim of every look.
          if (e.message !== this.lastFailure) this.log(`queue: ${e.message}`, { event: 'queue.error', level: 'warn' });
          this.lastFailure = e.message;
        });
      this.inflight.add(p);
    }
    void this.refresh().catch(() => {});
  }

  /** Claims, delivers and settles one due notice; false when none was due. */
  private async claimOne(): Promise<boolean> {
    if (this.closed) return false;
    const client = await this.options.pool.connect();
    let broken: Error | undefined;
    // The connection may drop while a delivery holds it (PostgreSQL restarted): without a listener
    // that 'error' event would end the process; the next query fails instead and the claim is retried.
    const dropped = (e: Error) => {
      broken = e;
    };
    client.on('error', dropped);
    try {
      await client.query('BEGIN');
      const row = (
        await client.query<NoticeRow>(
          'SELECT * FROM notices WHERE next_at <= now() ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED',
        )
      ).rows[0];
      if (!row) {
        await client.query('COMMIT');
        return false;
      }
      const notice: Notice = { ...toEntry(row), payload: row.payload };
      const result = await deliverNotice(this.deliverers, notice);
      if (result.done) {
        await client.query('DELETE FROM notices WHERE id = $1', [notice.id]);
        // The receiver is back: the notices of this kind waiting out a back-off go now.
        if (notice.attempts > 0)
          await client.query('UPDATE notices SET next_at = now() WHERE kind = $1 AND next_at > now()', [notice.kind]);
        await client.query('COMMIT');
        this.snapshot.depth = Math.max(0, this.snapshot.depth - 1);
        this.snapshot.pending = this.snapshot.pending.filter((n) => n.id !== notice.id);
        return true;
      }
      const attempts = notice.attempts + 1;
      const delay = Math.min(this.options.maxMs, this.options.minMs * 2 ** Math.min(attempts - 1, 30));
      // Jitter (±20%) keeps the notices of one outage from retrying in lockstep.
      const nextAt = new Date(Date.now() + Math.round(delay * (0.8 + Math.random() * 0.4)));
      await client.query('UPDATE notices SET attempts = $2, next_at = $3, last_error = $4 WHERE id = $1', [
        notice.id,
        attempts,
        nextAt,
        result.error,
      ]);
      await client.query('COMMIT');
      this.log(
        `queue: ${notice.kind} notice ${notice.id} attempt ${attempts} failed (${result.error}); retry in ${delay} ms`,
        {
          event: notice.kind.startsWith('hook:') ? 'hook.failed' : 'notice.failed',
          level: 'warn',
          notice_id: notice.id,
          kind: notice.kind,
          attempts,
          retry_in_ms: delay,
        },
      );
      return true;
    } catch (e) {
      broken = e as Error;
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      // A connection that failed mid-transaction is not handed to the next user.
      client.off('error', dropped);
      client.release(broken);
    }
  }

  private log(message: string, fields?: LogFields): void {
    (this.options.log ?? console.error)(message, fields);
  }
}
