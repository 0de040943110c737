// The machine's own limits, measured in the same run as the servers: how fast node copies a file on
// this disk (the write limit: every upload ends up written) and how fast node's md5 hashes it (the
// hash limit: tuspass hashes every byte). A server cannot beat either; both together bound it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { mbps } from './stats.ts';

/** Stream copy with 1 MiB reads, as a server writing the body would do. */
export async function copyMBps(file: string, target: string, bytes: number): Promise<number> {
  const started = performance.now();
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), fs.createWriteStream(target));
  const ms = performance.now() - started;
  fs.rmSync(target, { force: true });
  return mbps(bytes, ms);
}

/** node's md5 over the file in 1 MiB pieces (from the page cache: the file was just written). */
export async function md5MBps(file: string, bytes: number): Promise<number> {
  const started = performance.now();
  const hash = crypto.createHash('md5');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>)
    hash.update(chunk);
  hash.digest();
  return mbps(bytes, performance.now() - started);
}

/** Copy while hashing: the raw pipeline's work without any HTTP — the ceiling for a server with md5. */
export async function copyWithMd5MBps(file: string, target: string, bytes: number): Promise<number> {
  const started = performance.now();
  const hash = crypto.createHash('md5');
  const source = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  source.on('data', (chunk) => hash.update(chunk));
  await pipeline(source, fs.createWriteStream(target));
  hash.digest();
  const ms = performance.now() - started;
  fs.rmSync(target, { force: true });
  return mbps(bytes, ms);
}
