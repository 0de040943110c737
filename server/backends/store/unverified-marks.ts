// A checksummed PATCH leaves a marker beside the upload while its body arrives (<id>.unverified, the
// offset it started at): "the Server MUST respond with the 460 Checksum Mismatch status code and MUST
// NOT append the chunk", so a body the process stopped in the middle of, never verified, is cut off
// at the next start.
import fsp from 'node:fs/promises';
import { writeAtomically } from '../../../core/file-modes.ts';
import type { StorePaths } from './store-paths.ts';
import { idsBy } from './stored-upload.ts';

export class UnverifiedMarks {
  constructor(
    private readonly paths: StorePaths,
    private readonly fileMode: number,
  ) {}

  /** A checksummed PATCH starts at `offset`. */
  async mark(id: string, offset: number): Promise<void> {
    await writeAtomically(this.paths.unverifiedPath(id), String(offset), this.fileMode);
  }

  /** The PATCH ended (verified, or cut back by itself). */
  async clear(id: string): Promise<void> {
    await fsp.rm(this.paths.unverifiedPath(id), { force: true });
  }

  /**
   * Checksummed PATCHes that never finished (the process stopped mid-body) are undone: each file is
   * cut back to where that PATCH started. Only at start, before anything listens: while running, a
   * marker belongs to a PATCH in progress, which removes it itself. `names`: the store's listing.
   */
  async undoAll(names: readonly string[]): Promise<string[]> {
    const undone: string[] = [];
    for (const id of idsBy(names, '.unverified')) {
      const text = await fsp.readFile(this.paths.unverifiedPath(id), 'utf8').catch(() => '');
      // A marker that is not a whole number (cut short) says nothing trustworthy: leave the file.
      if (/^\d+$/.test(text)) {
        await fsp.truncate(this.paths.filePath(id), Number(text)).catch(() => undefined);
        // A state saved by that PATCH would be ahead of the file: gone, rebuilt from the file.
        await fsp.rm(this.paths.statePath(id), { force: true });
        undone.push(id);
      }
      await this.clear(id);
    }
    return undone;
  }
}
