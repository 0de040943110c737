// Where an upload's files sit in the store: the upload itself, and beside it its .json info (written
// by info-store.ts), its .digest state and, during a checksummed PATCH, its .unverified marker.
import path from 'node:path';
import { ERRORS as TUS_ERRORS, isPathInsideDirectory } from '@tus/utils';

export class StorePaths {
  /** The store directory, resolved. */
  readonly dir: string;

  constructor(directory: string) {
    this.dir = path.resolve(directory);
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

  /** Marks a checksummed PATCH in progress: its start offset, so a crash mid-way can be undone. */
  unverifiedPath(id: string): string {
    return `${this.filePath(id)}.unverified`;
  }
}

/** Temp files of digest states and info files (`<name>.<pid>.tmp`), and of checksum markers. */
export const TEMP_FILE = /\.(?:digest|json)\.\d+\.tmp$|\.unverified\.tmp$/;
