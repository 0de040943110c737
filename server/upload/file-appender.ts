// Appends a byte stream to a file at a position. A chunk is written at once when the disk is idle;
// while a write is in flight the next chunks gather into a batch written with one writev (one write
// in flight, at most BATCH_BYTES waiting), and each chunk is handed to
// `onWritten` only after it is on disk, in order — the digest state never runs ahead of the file.
import fsp from 'node:fs/promises';

/** Bytes gathered before a writev: large enough to keep syscalls few, small enough to stay flat in memory. */
const BATCH_BYTES = 128 * 1024;

export class FileAppender {
  private inFlight: Promise<void> | undefined;
  private busy = false;

  private constructor(
    private readonly file: fsp.FileHandle,
    private position: number,
    private readonly onWritten: (chunk: Buffer) => void | Promise<void>,
    private readonly onFlushed?: (position: number) => void,
  ) {}

  /** `onWritten` may return a promise to slow the writing down (the hashing thread has a backlog). */
  static async open(path: string, position: number, onWritten: (chunk: Buffer) => void | Promise<void>, onFlushed?: (position: number) => void): Promise<FileAppender> {
    return new FileAppender(await fsp.open(path, 'r+'), position, onWritten, onFlushed);
  }

  /**
   * Writes the source until it ends or `limit` bytes are reached. Returns true when the source had
   * more than `limit` bytes (the rest is left unread, and the source not destroyed, so the caller can
   * still answer). If the source fails, what arrived before is written, then the error is thrown.
   */
  async pump(source: AsyncIterable<Buffer>, limit: number): Promise<boolean> {
    const it = source[Symbol.asyncIterator]();
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let total = 0;
    let exceeded = false;
    let sourceError: unknown;
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
        batch.push(chunk);
        batchBytes += chunk.byteLength;
        if (!this.busy || batchBytes >= BATCH_BYTES) {
          await this.inFlight;
          this.busy = true;
          const write = this.flush(batch).finally(() => {
            this.busy = false;
          });
          // Awaited later (next batch or the end); marked handled now so a failing disk write that
          // lands while we wait for the network is not an unhandled rejection.
          write.catch(() => undefined);
          this.inFlight = write;
          batch = [];
          batchBytes = 0;
        }
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
    if (batch.length) await this.flush(batch);
    if (sourceError !== undefined) throw sourceError;
    return exceeded;
  }

  async close(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    await this.file.close();
  }

  private async flush(chunks: Buffer[]): Promise<void> {
    let pending = chunks.filter((c) => c.byteLength > 0);
    while (pending.length) {
      const { bytesWritten } = await this.file.writev(pending, this.position);
      this.position += bytesWritten;
      // Hand over whole chunks that are on disk; a partly written chunk is split.
      let left = bytesWritten;
      const rest: Buffer[] = [];
      for (const c of pending) {
        if (left >= c.byteLength) {
          await this.onWritten(c);
          left -= c.byteLength;
        } else if (left > 0) {
          await this.onWritten(c.subarray(0, left));
          rest.push(c.subarray(left));
          left = 0;
        } else rest.push(c);
      }
      pending = rest;
    }
    this.onFlushed?.(this.position);
  }
}
