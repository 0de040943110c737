// A FileStore whose PATCH writes hash the bytes as they reach the disk. Each chunk is written first
// and hashed after, so the saved digest state never covers bytes the file does not hold. If the
// process dies between a write and the state save, the next write hashes the missing gap from disk
// (only the gap, never the whole file).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { ERRORS as TUS_ERRORS, isPathInsideDirectory, type Upload } from '@tus/utils';
import { DigestState, type DigestName, type Digests } from './digest-state.ts';

export interface DigestStoreOptions {
  directory: string;
  algorithms: readonly DigestName[];
  expirationPeriodInMilliseconds?: number;
}

export class DigestFileStore extends FileStore {
  readonly algorithms: readonly DigestName[];
  private readonly dir: string;

  constructor(options: DigestStoreOptions) {
    // FileStore creates its directory asynchronously and throws in the callback, which would crash
    // the process; creating it first, synchronously, makes a failure surface here instead.
    fs.mkdirSync(options.directory, { recursive: true });
    super({ directory: options.directory, expirationPeriodInMilliseconds: options.expirationPeriodInMilliseconds });
    this.algorithms = options.algorithms;
    this.dir = path.resolve(options.directory);
  }

  /** The upload's file in the store; ids that would lead outside it are not found (as FileStore does). */
  filePath(id: string): string {
    const file = path.join(this.dir, id);
    if (!isPathInsideDirectory(this.dir, file)) throw TUS_ERRORS.FILE_NOT_FOUND;
    return file;
  }

  /** Where the digest state of an upload is kept: beside the file and its .json info. */
  statePath(id: string): string {
    return `${this.filePath(id)}.digest`;
  }

  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    await (await DigestState.fresh(this.algorithms)).save(this.statePath(upload.id));
    return created;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const filePath = this.filePath(id);
    const state = await this.stateAt(id, offset);
    const file = await fsp.open(filePath, 'r+');
    let position = offset;
    try {
      for await (const chunk of readable as AsyncIterable<Buffer>) {
        let done = 0;
        while (done < chunk.byteLength) {
          const { bytesWritten } = await file.write(chunk, done, chunk.byteLength - done, position + done);
          done += bytesWritten;
        }
        state.update(chunk);
        position += chunk.byteLength;
      }
    } catch {
      throw TUS_ERRORS.FILE_WRITE_ERROR;
    } finally {
      await file.close();
      await state.save(this.statePath(id));
    }
    return position;
  }

  override async remove(id: string): Promise<void> {
    await super.remove(id);
    await fsp.rm(this.statePath(id), { force: true });
  }

  /** The digests of an upload's bytes so far (the whole file once it is finished). */
  async digests(id: string, offset: number): Promise<Digests> {
    return (await this.stateAt(id, offset)).digests();
  }

  /**
   * The digest state covering exactly `offset` bytes. A state behind the file (crash after a write,
   * before the save) is caught up by hashing the gap from disk; a missing, unreadable or ahead state
   * (file truncated by hand, configuration changed) is rebuilt from the file.
   */
  private async stateAt(id: string, offset: number): Promise<DigestState> {
    let state = await DigestState.load(this.statePath(id), this.algorithms);
    if (!state || state.offset > offset) state = await DigestState.fresh(this.algorithms);
    if (state.offset < offset) {
      const gap = fs.createReadStream(this.filePath(id), { start: state.offset, end: offset - 1, highWaterMark: 1 << 20 });
      for await (const chunk of gap as AsyncIterable<Buffer>) state.update(chunk);
      await state.save(this.statePath(id));
    }
    return state;
  }
}
