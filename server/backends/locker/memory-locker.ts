// Upload locks of a single instance (without REDIS_URL): one holder per upload id, in this process.
// The handover is the Redis locker's (redis-locker.ts): a request that finds the upload held asks the
// holder to let go (its onRelease: a PATCH still reading its body ends, keeping its bytes), then
// waits its turn. Waiters are served in the order they came, each woken when the lock is free,
// never by polling; one still waiting when the lock changes hands asks the new holder too, so a
// request stuck on a dead connection cannot keep a resuming client out.
import type { Lock, RequestRelease } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { LOCK_WAIT_MS, type UploadLocker } from './upload-lock.ts';

interface Waiter {
  take: () => void;
  release: RequestRelease;
}

interface Held {
  release: RequestRelease;
  waiting: Waiter[];
}

export class MemoryLocker implements UploadLocker {
  private readonly held = new Map<string, Held>();

  constructor(private readonly waitMs = LOCK_WAIT_MS) {}

  newLock(id: string): Lock {
    let mine = false;
    return {
      lock: async (signal, release) => {
        if (mine) throw new Error(`lock ${id} taken twice by one request`);
        await this.acquire(id, signal, release);
        mine = true;
      },
      unlock: async () => {
        if (!mine) throw new Error(`lock ${id} released by a request that does not hold it`);
        mine = false;
        this.handOver(id);
      },
    };
  }

  private acquire(id: string, signal: AbortSignal, release: RequestRelease): Promise<void> {
    const held = this.held.get(id);
    if (!held) {
      this.held.set(id, { release, waiting: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        release,
        take: () => {
          done();
          resolve();
        },
      };
      // tusd answers an upload another request keeps holding 423 Locked (ERR_UPLOAD_LOCKED).
      const giveUp = () => {
        const at = held.waiting.indexOf(waiter);
        if (at >= 0) held.waiting.splice(at, 1);
        done();
        reject(new TuspassError(ERRORS.ERR_UPLOAD_LOCKED));
      };
      const timer = setTimeout(giveUp, this.waitMs);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', giveUp);
      };
      if (signal.aborted) return giveUp();
      signal.addEventListener('abort', giveUp, { once: true });
      held.waiting.push(waiter);
      askToLetGo(held.release);
    });
  }

  /** The holder let go: the next waiter holds the lock now, and whoever still waits asks it to let go. */
  private handOver(id: string): void {
    const held = this.held.get(id);
    if (!held) return;
    const next = held.waiting.shift();
    if (!next) {
      this.held.delete(id);
      return;
    }
    held.release = next.release;
    next.take();
    if (held.waiting.length > 0) askToLetGo(held.release);
  }
}

/** A holder's onRelease runs apart from the waiter: its failure is the holder's, never the waiter's. */
function askToLetGo(release: RequestRelease): void {
  queueMicrotask(() => {
    void Promise.resolve()
      .then(release)
      .catch(() => undefined);
  });
}
