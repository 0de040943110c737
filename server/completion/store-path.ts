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
  const resolved = path.resolve(filePath);
  if (!isBelow(resolvedStore, resolved)) throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, filePath);
  const realStore = await orMissing(filePath, realStoreOf(resolvedStore));

  // The common case, one lstat: an upload's file sits directly in the store and is no symlink, so
  // its real path is the store's real path and its name.
  if (path.dirname(resolved) === resolvedStore) {
    const entry = await orMissing(filePath, fs.lstat(resolved));
    if (entry.isFile()) return { realPath: path.join(realStore, path.basename(resolved)), size: entry.size };
  }

  const realPath = await orMissing(filePath, fs.realpath(filePath));
  // Then the real one: a symlink in the store (or a symlinked directory) must not lead outside.
  if (!isBelow(realStore, realPath)) throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, filePath);

  const stat = await orMissing(filePath, fs.stat(realPath));
  if (!stat.isFile()) throw new TuspassError(ERRORS.ERR_FILE_MISSING, `${filePath} is not a regular file`);
  return { realPath, size: stat.size };
}

/**
 * The store directory's real path, resolved once per process (every form and download needs it).
 * A failure is not kept, so a store that appears later is found.
 */
const realStores = new Map<string, Promise<string>>();
function realStoreOf(resolvedStore: string): Promise<string> {
  let real = realStores.get(resolvedStore);
  if (!real) {
    real = fs.realpath(resolvedStore);
    realStores.set(resolvedStore, real);
    real.catch(() => realStores.delete(resolvedStore));
  }
  return real;
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
