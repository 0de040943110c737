// Appends a byte stream to a file at a position. Each arriving chunk is copied at once into one of
// two write buffers of the upload: one is being written while the other fills (one write in flight,
// at most BUFFER_BYTES waiting). A buffer is written at once when the disk is idle, or when full.
// Each written buffer is handed to `onWritten` only after it is on disk, in order: the digest state
// never runs ahead of the file.
//
// Why copy: the socket's chunks would otherwise stay referenced for as long as their write waits
// behind other uploads' writes, live long enough to be promoted to V8's old generation, and then go
// only at a full collection, which V8 starts after some 64 MB of such garbage. Copied, they die
// young and go at the next scavenge; the buffers that hold the bytes are reused from a small pool.
// Measured with 64 uploads of 32 MiB in flight: ~35 MB of chunks were live at the peak before.
import fs from 'node:fs';
import { promisify } from 'node:util';

// Plain descriptors rather than fs/promises' FileHandle: a FileHandle is a transferable object with
// its own bookkeeping, and opening one showed as the largest item in profiles of many small uploads.
const open = promisify(fs.open);
const write = (fd: number, buffer: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((resolve, reject) =>
    fs.write(fd, buffer, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))),
  );
const close = promisify(fs.close);

/** Size of a write buffer: large enough to keep syscalls few, small enough to stay flat in memory. */
export const BUFFER_BYTES = 128 * 1024;
/** Free buffers kept for reuse (4 MiB); more than that are left to the garbage collector. */
const POOL_LIMIT = 32;
const pool: Buffer[] = [];

// allocUnsafeSlow: a buffer of its own, not a slice of Node's shared slab; it is fully overwritten
// before any byte of it is written out.
const take = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
const give = (b: Buffer): void => {
  if (pool.length < POOL_LIMIT) pool.push(b);
};

/** The source failed (not the disk): its error, and how many of its bytes were read (and written) before. */
export class SourceFailed {
  constructor(
    readonly cause: unknown,
    readonly read: number,
  ) {}
}

export class FileAppender {
  private inFlight: Promise<void> | undefined;
  private busy = false;

  private constructor(
    private readonly fd: number,
    private position: number,
    private readonly onWritten: (bytes: Buffer) => void | Promise<void>,
    private readonly onFlushed?: (position: number) => void,
    private readonly beforeWrite?: (end: number) => Promise<void>,
  ) {}

  /**
   * `onWritten` may return a promise to slow the writing down (the hashing thread has a backlog). It
   * must be done with the bytes when it returns (or its promise settles): the buffer is reused.
   */
  /**
   * `beforeWrite` runs before each buffer is written, told where the file will end: a fence
   * (redis-locker.ts) that throws when this writer no longer holds the upload, so nothing more is written.
   */
  static async open(
    path: string,
    position: number,
    onWritten: (bytes: Buffer) => void | Promise<void>,
    onFlushed?: (position: number) => void,
    beforeWrite?: (end: number) => Promise<void>,
  ): Promise<FileAppender> {
    return new FileAppender(await open(path, 'r+'), position, onWritten, onFlushed, beforeWrite);
  }

  /**
   * Writes the source until it ends or `limit` bytes are reached. Returns true when the source had
   * more than `limit` bytes (the rest is left unread, and the source not destroyed, so the caller can
   * still answer). If the source fails, what arrived before is written, then SourceFailed is thrown.
   */
  async pump(source: AsyncIterable<Buffer>, limit: number): Promise<boolean> {
    const it = source[Symbol.asyncIterator]();
    let filling: Buffer | undefined;
    let filled = 0;
    let total = 0;
    let exceeded = false;
    let sourceError: unknown;
    const send = async () => {
      await this.inFlight;
      this.busy = true;
      const write = this.flush(filling!, filled).finally(() => {
        this.busy = false;
      });
      // Awaited later (next buffer or the end); marked handled now so a failing disk write that
      // lands while we wait for the network is not an unhandled rejection.
      write.catch(() => undefined);
      this.inFlight = write;
      filling = undefined;
      filled = 0;
    };
    try {
      for (;;) {
        const next = await it.next();
        if (next.done) break;
        let chunk = next.value;
        if (total + chunk.byteLength > limit) {
          chunk = chunk.subarray(0, limit - total);
          exceeded = true;
        }
        total += chunk.byteLength;
        for (let at = 0; at < chunk.byteLength; ) {
          filling ??= take();
          const copied = chunk.copy(filling, filled, at);
          filled += copied;
          at += copied;
          if (filled === BUFFER_BYTES) await send();
        }
        if (filled > 0 && !this.busy) await send();
        if (exceeded) break;
      }
    } catch (e) {
      sourceError = e;
    }
    if (sourceError !== undefined) {
      // Let the source go (a file being read for concatenation would otherwise stay open).
      await Promise.resolve(it.return?.()).catch(() => undefined);
    }
    await this.inFlight;
    this.inFlight = undefined;
    if (filled > 0) await this.flush(filling!, filled);
    else if (filling) give(filling);
    if (sourceError !== undefined) throw new SourceFailed(sourceError, total);
    return exceeded;
  }

  async close(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    await close(this.fd);
  }

  /** Writes buffer[0, length) and hands it over; the buffer goes back to the pool either way. */
  private async flush(buffer: Buffer, length: number): Promise<void> {
    try {
      if (this.beforeWrite) await this.beforeWrite(this.position + length);
      for (let done = 0; done < length; ) {
        const bytesWritten = await write(this.fd, buffer, done, length - done, this.position);
        this.position += bytesWritten;
        done += bytesWritten;
      }
      await this.onWritten(buffer.subarray(0, length));
    } finally {
      give(buffer);
    }
    this.onFlushed?.(this.position);
  }
}
