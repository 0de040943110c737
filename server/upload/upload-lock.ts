// Runs work on one upload under the lock @tus/server's handlers use too, so HEAD, PATCH, creation and
// termination of one upload never interleave.
import type { Locker } from '@tus/utils';

/**
 * `onRelease` is called when another request wants the lock (a client resuming while its old PATCH
 * still hangs on a dead connection): the holder should end quickly.
 */
export async function withLock<T>(locker: Locker, id: string, onRelease: () => void, work: () => Promise<T>): Promise<T> {
  const lock = locker.newLock(id);
  await lock.lock(AbortSignal.timeout(30_000), onRelease);
  try {
    return await work();
  } finally {
    await lock.unlock();
  }
}
