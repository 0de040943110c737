// Runs work on one upload under its lock, so HEAD, PATCH, creation and
// termination of one upload never interleave.
import type { Lock, Locker } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';

/**
 * How long a request waits for an upload's lock: for another request to let go (then 423, tusd's
 * ERR_UPLOAD_LOCKED), or for a lock service that cannot be reached to come back (then 503
 * ERR_LOCK_UNAVAILABLE). Both answers are ones tus clients retry.
 */
export const LOCK_WAIT_MS = 30_000;

export interface LockOptions {
  /**
   * A read that can do without the lock (HEAD, GET): when the lock service cannot be reached, fail
   * at once with ERR_LOCK_UNAVAILABLE instead of waiting for it (withReadLock then reads unlocked).
   */
  readOnly?: boolean;
}

/** @tus/utils' Locker whose locks take LockOptions (RedisLocker; MemoryLocker is always reachable and ignores
 * them). */
export interface UploadLocker extends Locker {
  newLock(id: string, options?: LockOptions): Lock;
}

/**
 * `onRelease` is called when another request wants the lock (a client resuming while its old PATCH
 * still hangs on a dead connection): the holder should end quickly. `signal` ends the wait for the
 * lock (default: after LOCK_WAIT_MS).
 */
export async function withLock<T>(
  locker: UploadLocker,
  id: string,
  onRelease: () => void,
  work: () => Promise<T>,
  signal: AbortSignal = AbortSignal.timeout(LOCK_WAIT_MS),
): Promise<T> {
  const lock = locker.newLock(id);
  await lock.lock(signal, onRelease);
  try {
    return await work();
  } finally {
    await lock.unlock();
  }
}

const unavailable = (e: unknown) => e instanceof TuspassError && e.code === ERRORS.ERR_LOCK_UNAVAILABLE.code;

/**
 * A read of an upload (HEAD, GET): under its lock, so a stale PATCH of it lets go first and a write
 * in progress is not read half-way. While the lock service cannot be reached the read goes ahead
 * without the lock: it changes nothing, and no write can happen meanwhile (every write proves its
 * lock first, redis-locker.ts WriteFence), so the offset on disk is the upload's. A HEAD that waited
 * for the lock service, or failed, would make tus clients start the upload over (head-handler.ts).
 */
export async function withReadLock<T>(locker: UploadLocker, id: string, work: () => Promise<T>): Promise<T> {
  const lock = locker.newLock(id, { readOnly: true });
  try {
    await lock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {});
  } catch (e) {
    if (unavailable(e)) return work();
    throw e;
  }
  try {
    return await work();
  } finally {
    await lock.unlock();
  }
}
