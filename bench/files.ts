// Test files: random bytes (a 16 MiB random block repeated, so making 1 GiB costs no more than
// writing it) and their md5, computed with node's crypto as a reference digest.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';

const BLOCK = 16 << 20;

export async function makeFile(path: string, bytes: number): Promise<void> {
  const block = crypto.randomBytes(Math.min(BLOCK, bytes));
  const out = fs.createWriteStream(path);
  for (let written = 0; written < bytes; written += block.byteLength) {
    // Each block differs in its first bytes, so no two blocks of the file are equal.
    block.writeUInt32BE(written / block.byteLength, 0);
    const piece = bytes - written < block.byteLength ? block.subarray(0, bytes - written) : block;
    if (!out.write(Buffer.from(piece))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** md5 of a file read in 1 MiB pieces, and how long hashing + reading took. */
export async function md5File(path: string): Promise<{ md5: string; ms: number }> {
  const started = performance.now();
  const hash = crypto.createHash('md5');
  for await (const chunk of fs.createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>)
    hash.update(chunk);
  return { md5: hash.digest('hex'), ms: performance.now() - started };
}
