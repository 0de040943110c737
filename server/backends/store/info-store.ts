// The uploads' info files (<id>.json beside each upload), as @tus/utils' FileKvStore keeps them, read
// and written with node's callback fs instead of fs/promises: the promise API opens a FileHandle per
// call, which showed as the largest cost in profiles of many small uploads (each creation writes one).
import fs from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { ERRORS, FileKvStore, isPathInsideDirectory, type Upload } from '@tus/utils';
import { needsChmod, PRIVATE_MODES, writeAtomically } from '../../../core/file-modes.ts';

const readFile = promisify(fs.readFile);
const writeFile = promisify(fs.writeFile);
const chmod = promisify(fs.chmod);

export class InfoStore extends FileKvStore<Upload> {
  /** Mode of the info files (core/file-modes.ts): metadata names files and their owners. */
  fileMode = PRIVATE_MODES.file;

  override async get(key: string): Promise<Upload | undefined> {
    try {
      return JSON.parse(await readFile(this.infoPath(key), 'utf8')) as Upload;
    } catch {
      return undefined;
    }
  }

  override async set(key: string, value: Upload): Promise<void> {
    const file = this.infoPath(key);
    await writeFile(file, JSON.stringify(value), { mode: this.fileMode });
    if (needsChmod(this.fileMode)) await chmod(file, this.fileMode);
  }

  /**
   * Rewrites the info of an existing upload atomically (temp file + rename): a write cut short by a
   * full disk or a kill would otherwise leave a cut info file, and the upload unreadable. (A creation
   * writes a new file with set(): one step fewer, and a creation that fails is removed whole.)
   */
  async replace(key: string, value: Upload): Promise<void> {
    // Named by process, like the digest states' temp files: a kill's leftover is removed at the next start.
    const file = this.infoPath(key);
    await writeAtomically(file, JSON.stringify(value), this.fileMode, `${file}.${process.pid}.tmp`);
  }

  /** FileKvStore's rule (its own is private): ids that would lead outside the store are not found. */
  private infoPath(key: string): string {
    const file = path.resolve(this.directory, `${key}.json`);
    if (!isPathInsideDirectory(this.directory, file)) throw ERRORS.FILE_NOT_FOUND;
    return file;
  }
}
