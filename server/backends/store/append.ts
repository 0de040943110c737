// One append: a body written at `offset` and hashed on the way. Each chunk is written first and
// hashed after, so the saved digest state never covers bytes the file does not hold. If the process
// dies between a write and the state save, the next write hashes the missing gap from disk (only the
// gap, never the whole file).
import fsp from 'node:fs/promises';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { ChecksumCheck } from '../../hashing/checksum.ts';
import type { LiveDigests } from '../../hashing/live-digests.ts';
import type { BodyAdmission, SpaceLedger } from './space-ledger.ts';
import type { WriteFence } from '../locker/redis-locker.ts';
import { BodyInterrupted, isConnectionGone } from '../../http/dropped-requests.ts';
import { FileAppender, SourceFailed } from './file-appender.ts';
import { fullDiskAnswer, writeFailure } from './full-disk.ts';
import type { StorePaths } from './store-paths.ts';
import type { UnverifiedMarks } from './unverified-marks.ts';

export interface AppendOptions {
  /** Bytes accepted at most; more makes the result `exceeded` (the bytes up to the limit are kept). */
  limit?: number;
  /** Verify the body against this checksum; on mismatch nothing of the body is kept. */
  checksum?: ChecksumCheck;
  /** Told the upload's offset each time a batch reaches the disk (for post-receive). */
  onProgress?: (offset: number) => void;
  /**
   * The upload's length, when known. A write that completes the upload saves no state: if the
   * process stops before the completion is handled, the gap since the last save is hashed again.
   */
  size?: number;
  /**
   * The body's length when the request says it (Content-Length): for an upload the free-space
   * ledger owes nothing (deferred length, a multipart part), a body that cannot fit is refused
   * before a byte is read; its bytes are still admitted step by step (space-ledger.ts body()).
   */
  expected?: number;
  /**
   * The upload was made by this request, under the lock it holds (a creation with its body): no
   * other write can be in it, so the fence is started without asking Redis.
   */
  created?: boolean;
}

export interface AppendResult {
  offset: number;
  exceeded: boolean;
}

export interface AppendDeps {
  paths: StorePaths;
  digests: LiveDigests;
  marks: UnverifiedMarks;
  space: SpaceLedger;
  /**
   * With several instances on one store (REDIS_URL): every write proves its lock first, and the
   * version of the bytes it ends at is kept beside the live state (live-digests.ts).
   */
  fence: WriteFence | undefined;
}

/**
 * Appends a body at `offset`, hashing it on the way. With a checksum the body is kept only if it
 * matches: "the Server MUST respond with the 460 Checksum Mismatch status code and MUST NOT append
 * the chunk" — the file is cut back and the digest state left as it was.
 *
 * Every buffer is admitted by the free-space ledger before it is written (space-ledger.ts body()):
 * a body that would go into MIN_FREE_SPACE ends there with 507 ERR_STORAGE_FULL, what was written
 * before kept (as on a full disk) — unless it carries a checksum, then nothing of it is kept.
 */
export async function appendHashed(
  deps: AppendDeps,
  source: AsyncIterable<Buffer>,
  id: string,
  offset: number,
  options: AppendOptions,
): Promise<AppendResult> {
  const admission = deps.space.body(id, offset, options.expected);
  try {
    return await admitted(deps, admission, source, id, offset, options);
  } finally {
    admission.end();
  }
}

async function admitted(
  deps: AppendDeps,
  admission: BodyAdmission,
  source: AsyncIterable<Buffer>,
  id: string,
  offset: number,
  options: AppendOptions,
): Promise<AppendResult> {
  const { paths, digests, marks, space, fence } = deps;
  // A body that cannot fit whole is refused before a byte of it is read.
  if (options.expected !== undefined)
    await admission.fits(Math.min(options.expected, options.limit ?? Number.MAX_SAFE_INTEGER));
  let version = 0;
  if (fence) {
    version = options.created ? fence.start(id) : await fence.begin(id);
    // Another instance wrote since this one's live state was made (same offset or not): not trusted.
    digests.trustOnlyAt(id, version);
  }
  const state = await digests.at(id, offset, options.size);
  const beforeWrite = async (end: number) => {
    await admission.before(end);
    if (!fence) return;
    version = await fence.advance(id, version, end);
    digests.setVersion(id, version);
  };
  if (fence) digests.setVersion(id, version);
  const checksum = options.checksum;
  if (checksum) {
    await marks.mark(id, offset).catch((e: unknown) => {
      throw fullDiskAnswer(space, e, `writing upload ${id}, the bytes written so far kept`);
    });
  }
  const onProgress = options.onProgress;
  const appender = await FileAppender.open(
    paths.filePath(id),
    offset,
    (chunk) => {
      checksum?.running.update(chunk);
      return state.update(chunk);
    },
    (position) => {
      admission.written(position);
      onProgress?.(position);
    },
    beforeWrite,
  );
  let exceeded = false;
  let failure: unknown;
  let read: number | undefined;
  try {
    exceeded = await appender.pump(source, options.limit ?? Number.MAX_SAFE_INTEGER);
  } catch (e) {
    if (e instanceof SourceFailed) {
      failure = e.cause;
      read = e.read;
    } else failure = e;
  } finally {
    await appender.close();
  }
  /** What a failure is thrown as: a body whose connection went says what was read and kept; the rest as writeFailure
   * says. */
  const thrown = (kept: number, at: number) =>
    read !== undefined && isConnectionGone(failure)
      ? new BodyInterrupted(id, read, kept, at, failure)
      : writeFailure(space, id, failure);
  // A writer that lost its lock writes nothing more, not even its digest state or a checksum undo
  // (the next holder may already have moved the upload on): its live state goes, the saved one is
  // caught up from the file. (A checksummed body's marker stays: undone at the next start.)
  if (
    failure instanceof TuspassError &&
    (failure.code === ERRORS.ERR_LOCK_LOST.code || failure.code === ERRORS.ERR_LOCK_UNAVAILABLE.code)
  ) {
    digests.forget(id);
    throw failure;
  }
  if (checksum) {
    // An interrupted body cannot be verified, so it is dropped like a mismatching one.
    const ok = failure === undefined && !exceeded && checksum.running.matches(checksum.expected);
    if (!ok) {
      // The running digests took in the refused bytes: forget them; the saved state is still right.
      digests.forget(id);
      await fsp.truncate(paths.filePath(id), offset);
      admission.written(offset);
      await marks.clear(id);
      if (failure === undefined && !exceeded) throw new TuspassError(ERRORS.ERR_CHECKSUM_MISMATCH);
      if (failure !== undefined) throw thrown(0, offset);
      return { offset, exceeded };
    }
  }
  if (state.offset !== options.size) {
    // Stopped short: saved for the next PATCH, or, for an inline state, dropped (it is rebuilt from
    // the file). A state a full disk keeps from being saved is dropped too; the bytes written are kept.
    if (!state.resumable || !(await digests.save(id, state))) digests.forget(id);
  }
  if (checksum) await marks.clear(id);
  if (failure !== undefined) throw thrown(state.offset - offset, state.offset);
  return { offset: state.offset, exceeded };
}
