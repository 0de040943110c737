// Runs work on one upload under the lock @tus/server's handlers use too, so HEAD, PATCH, creation and
// termination of one upload never interleave.
import type { Locker } from '@tus/utils';

/** How long a request waits for a lock another holds, unless it brings its own signal. */
const LOCK_WAIT_MS = 30_000;

/**
 * `onRelease` is called when another request wants the lock (a client resuming while its old PATCH
 * still hangs on a dead connection): the holder should end quickly. `signal` ends the wait for the
 * lock (default: after LOCK_WAIT_MS).
 */
export async function withLock<T>(locker: Locker, id: string, onRelease: () => void, work: () => Promise<T>, signal: AbortSignal = AbortSignal.timeout(LOCK_WAIT_MS)): Promise<T> {
  const lock = locker.newLock(id);
  await lock.lock(signal, onRelease);
  try {
    return await work();
  } finally {
    await lock.unlock();
  }
}
