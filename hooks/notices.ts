// What the durable notice queue offers its users (the hook runner, the complete-form hook, the
// multipart completion, admission, /metrics and /readyz): one interface, two engines. NoticeQueue
// (hooks/queue.ts) keeps each notice as a file in DATA_DIR/queue, one instance's; PgNoticeQueue
// (hooks/pg-queue.ts) keeps them as rows in PostgreSQL (DATABASE_URL) that any instance delivers.
import { errorText } from '../core/logger.ts';

/** A notice id: also its file's name in the queue directory (`<id>.json`), so no path separator may pass. */
export const NOTICE_ID = /^[A-Za-z0-9_.-]+$/;

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

/**
 * Hands a notice to the deliverer of its kind — or of its prefix (`hook:*`) when the kind has none of
 * its own — and turns a throw into a failed attempt. Both queues (files, PostgreSQL) deliver this way.
 */
export async function deliverNotice(deliverers: ReadonlyMap<string, Deliver>, notice: Notice): Promise<DeliveryResult> {
  const deliver =
    deliverers.get(notice.kind) ?? deliverers.get(`${notice.kind.slice(0, notice.kind.indexOf(':') + 1)}*`);
  try {
    return deliver ? await deliver(notice) : { done: false, error: `no deliverer for kind ${notice.kind}` };
  } catch (e) {
    return { done: false, error: errorText(e) };
  }
}

/** What memory keeps of a queued notice: everything but the payload, which stays in its file. */
export type QueuedNotice = Omit<Notice, 'payload'>;

export interface Notices {
  /** How notices of one kind are delivered; a kind ending in `:*` catches that prefix's kinds without their own. */
  handle(kind: string, deliver: Deliver): void;
  /** Starts delivering (notices left from before included). */
  start(): Promise<void>;
  /**
   * Stores a notice durably before it returns, then delivers it at least once with the same id on every
   * attempt. `failedWith`: the caller tried once already; the first retry waits out the first back-off.
   */
  enqueue<T>(kind: string, payload: T, options?: { id?: string; failedWith?: string }): Promise<string>;
  /** Notices not yet delivered, without payloads (a shared queue: as of its last look at the database). */
  pending(): QueuedNotice[];
  /** Depth and the oldest notice's creation (ms since the epoch), for /metrics. */
  stats(): { depth: number; oldestCreatedAt?: number };
  /** At QUEUE_MAX or beyond: new uploads are refused (503 ERR_QUEUE_FULL) until it drains. */
  isFull(): boolean;
  /** Resolves true once the queue is empty, false at the timeout. */
  drained(timeoutMs?: number): Promise<boolean>;
  /** Stops delivering; deliveries under way finish first. */
  close(): Promise<void>;
}
