// Reads a stored upload back: the gap a digest state is behind the file (live-digests.ts), and the
// partials of a concatenation on the file store (backends/store/digest-store.ts).
import type fsp from 'node:fs/promises';

/**
 * Bytes [start, end) of an open file, in chunks of 1 MiB. A generator rather than a read stream: a
 * stream's errors are events, lost (and fatal) when nothing listens yet; here a failed read is a
 * rejection of the consumer's own next().
 */
export async function* readChunks(handle: fsp.FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
  for (let position = start; position < end; ) {
    const chunk = Buffer.allocUnsafe(Math.min(1 << 20, end - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.byteLength, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
}
