// Files with known content and digests for tests.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Deterministic pseudo-random bytes (fast to make, not compressible, the same every run for one `variant`). */
export function patternBytes(size: number, variant = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let block = crypto.createHash('sha256').update(String(variant)).digest();
  for (let i = 0; i < size; i += block.length) {
    block.copy(out, i, 0, Math.min(block.length, size - i));
    if (i % 4096 === 0) block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}

export function writeTestFile(
  dir: string,
  name: string,
  size: number,
  variant = 1,
): { path: string; bytes: Buffer; md5: string } {
  const bytes = patternBytes(size, variant);
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return { path: file, bytes, md5: md5(bytes) };
}

export const md5 = (b: Buffer | string) => crypto.createHash('md5').update(b).digest('hex');
export const sha1 = (b: Buffer | string) => crypto.createHash('sha1').update(b).digest('hex');

/** crc32 (IEEE), independent of the server's implementation; node 20 has no zlib.crc32. */
export function crc32(b: Buffer): string {
  let c = ~0;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (~c >>> 0).toString(16).padStart(8, '0');
}

export async function md5OfFile(file: string): Promise<string> {
  const h = crypto.createHash('md5');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
