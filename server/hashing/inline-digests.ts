// Digests of a small upload, computed on the main thread with node's crypto. For an upload that fits
// in a few chunks, handing each chunk to the hashing thread (a message, a wake-up, an answer) costs
// more than hashing it here: 16 KiB of md5 is some 25 µs, a round trip to the thread several times
// that in main-thread time. Node's hashers cannot be saved, so such a state is never written to disk:
// when the upload stops short, it is dropped and the next PATCH hashes the bytes so far from the file
// (at most INLINE_MAX_BYTES) on the hashing thread, as after a crash.
import crypto from 'node:crypto';
import type { DigestName, Digests } from '../../core/wire.ts';
import type { RunningDigests } from './digest-state.ts';

/** Uploads up to this length are hashed here when their first bytes arrive. */
export const INLINE_MAX_BYTES = 256 * 1024;

/** The algorithms node's crypto has (crc32 is not one of them in node 20). */
const NODE_HASHES: ReadonlySet<DigestName> = new Set(['md5', 'sha1']);

export const canHashInline = (algorithms: readonly DigestName[], size: number | undefined): boolean =>
  size !== undefined && size <= INLINE_MAX_BYTES && algorithms.every((a) => NODE_HASHES.has(a));

export class InlineDigests implements RunningDigests {
  offset = 0;
  readonly onDisk = false;
  readonly resumable = false;
  private readonly hashes: Array<[DigestName, crypto.Hash]>;

  constructor(algorithms: readonly DigestName[]) {
    this.hashes = algorithms.map((a) => [a, crypto.createHash(a)]);
  }

  update(chunk: Uint8Array): void {
    this.offset += chunk.byteLength;
    for (const [, hash] of this.hashes) hash.update(chunk);
  }

  save(): Promise<void> {
    throw new Error('an inline digest state cannot be saved');
  }

  async digests(): Promise<Digests> {
    // copy(): the running hashes stay open, as with the hashing thread's digest.
    const out = Object.fromEntries(this.hashes.map(([name, hash]) => [name, hash.copy().digest('hex')]));
    return { ...(out as { md5: string }), size: this.offset };
  }

  release(): void {}
}
