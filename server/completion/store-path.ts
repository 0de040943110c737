// The completion form names a file by absolute path; this makes sure it is one of ours. A signed form
// should only name store files, but the check keeps a leaked secret or a bug from turning the
// download route into a reader of any file on the machine.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERRORS, TuspassError } from '../errors.ts';

/** True when `target` is strictly below `root` (both absolute, already normalised). */
function isBelow(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel !== '' && rel !== '..' && !rel.startsWith('..' + path.sep) && !path.isAbsolute(rel);
}

/**
 * Resolves `filePath` (symlinks included) and checks it is a regular file inside `storeDir`
 * (also resolved). Returns the real path and the size on disk.
 * Throws ERR_PATH_OUTSIDE_STORE (403) or ERR_FILE_MISSING (422).
 */
export async function checkStorePath(storeDir: string, filePath: string): Promise<{ realPath: string; size: number }> {
  // Lexical check first, so `<store>/../etc/passwd` is refused as outside whether or not it exists.
  const resolvedStore = path.resolve(storeDir);
  if (!isBelow(resolvedStore, path.resolve(filePath))) throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, filePath);

  const realStore = await orMissing(filePath, fs.realpath(resolvedStore));
  const realPath = await orMissing(filePath, fs.realpath(filePath));
  // Then the real one: a symlink in the store (or a symlinked directory) must not lead outside.
  if (!isBelow(realStore, realPath)) throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, filePath);

  const stat = await orMissing(filePath, fs.stat(realPath));
  if (!stat.isFile()) throw new TuspassError(ERRORS.ERR_FILE_MISSING, `${filePath} is not a regular file`);
  return { realPath, size: stat.size };
}

/** A file that vanishes (or never was) between the form and the check is missing, not an internal error. */
async function orMissing<T>(filePath: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TuspassError(ERRORS.ERR_FILE_MISSING, filePath);
    throw e;
  }
}
