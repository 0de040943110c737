// The checksum extension: `Upload-Checksum: <algorithm> <base64 digest>` covers one PATCH body.
// Verified while the body streams into the store (nothing is buffered), compared at its end.
import crypto from 'node:crypto';
import type { IHasher } from 'hash-wasm';

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
    throw new ChecksumHeaderError(`unsupported checksum algorithm "${algorithm}"; supported: ${CHECKSUM_ALGORITHMS.join(',')}`);
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
