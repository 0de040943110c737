// The checksum extension: `Upload-Checksum: <algorithm> <base64 digest>` covers one request body —
// a PATCH's, or a creation-with-upload's (the same rule for both: requestChecksum below). Verified
// while the body streams into the store (nothing is buffered), compared at its end; on a mismatch
// the store keeps nothing of the body (store/append.ts).
import crypto from 'node:crypto';
import type { IHasher } from 'hash-wasm';
import { ERRORS, TuspassError } from '../../core/errors.ts';

/** What `Tus-Checksum-Algorithm` advertises. "The Server MUST support at least the SHA1 checksum algorithm". */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512', 'crc32'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface ExpectedChecksum {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

export class ChecksumHeaderError extends Error {}

/** Parses the header; an unknown algorithm or a malformed value is a ChecksumHeaderError (400). */
export function parseUploadChecksum(value: string): ExpectedChecksum {
  const m = /^\s*([A-Za-z0-9-]+) +([A-Za-z0-9+/]+={0,2})\s*$/.exec(value);
  if (!m) throw new ChecksumHeaderError(`Upload-Checksum must be "<algorithm> <base64>", got "${value}"`);
  const algorithm = m[1]!.toLowerCase();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new ChecksumHeaderError(
      `unsupported checksum algorithm "${algorithm}"; supported: ${CHECKSUM_ALGORITHMS.join(',')}`,
    );
  }
  return { algorithm: algorithm as ChecksumAlgorithm, digest: Buffer.from(m[2]!, 'base64') };
}

/** A running checksum of one request body. */
export interface BodyChecksum {
  update(chunk: Uint8Array): void;
  matches(expected: ExpectedChecksum): boolean;
}

/** What a body is verified against, and its running checksum. */
export interface ChecksumCheck {
  expected: ExpectedChecksum;
  running: BodyChecksum;
}

export async function bodyChecksum(algorithm: ChecksumAlgorithm): Promise<BodyChecksum> {
  if (algorithm === 'crc32') {
    // node 20 has no crc32 in crypto or zlib; hash-wasm's is fast (about 2.5 GB/s here). Loaded on
    // first use: the main thread has no other need of hash-wasm (13 MB resident).
    const { createCRC32 } = await import('hash-wasm');
    const h: IHasher = (await createCRC32()).init();
    return { update: (c) => void h.update(c), matches: (e) => Buffer.from(h.digest('binary')).equals(e.digest) };
  }
  const h = crypto.createHash(algorithm);
  return { update: (c) => void h.update(c), matches: (e) => h.digest().equals(e.digest) };
}

/**
 * The check of a body that came with this Upload-Checksum header (none without one). "If the hash
 * cannot be calculated at the Server because the algorithm is not supported, the Server MUST respond
 * with the 400 Bad Request status": so is a malformed header (ERR_CHECKSUM_HEADER).
 */
export async function requestChecksum(header: string | undefined): Promise<ChecksumCheck | undefined> {
  if (header === undefined) return undefined;
  let expected: ExpectedChecksum;
  try {
    expected = parseUploadChecksum(header);
  } catch (e) {
    if (e instanceof ChecksumHeaderError) throw new TuspassError(ERRORS.ERR_CHECKSUM_HEADER, e.message);
    throw e;
  }
  return { expected, running: await bodyChecksum(expected.algorithm) };
}
