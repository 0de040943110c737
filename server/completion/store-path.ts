// The completion form names a file by absolute path; this makes sure it is one of ours. A signed form
// should only name store files, but the check keeps a leaked secret or a bug from turning the
// download route into a reader of any file on the machine.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERRORS, TuspassError } from '../../core/errors.ts';

/** True when `target` is strictly below `root` (both absolute, already normalised). */
function isBelow(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * How answers name a file: relative to the store, never the absolute path (that goes to the log, as
 * the errors' logDetail). A path outside the store is not named at all.
 */
export function inStoreName(storeDir: string, filePath: string): string | undefined {
  const rel = path.relative(path.resolve(storeDir), path.resolve(filePath));
  return rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel) ? undefined : rel;
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
  if (!isBelow(resolvedStore, resolved)) throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, undefined, filePath);
  const name = inStoreName(resolvedStore, resolved)!;
  const orMissing = <T>(p: Promise<T>) => missingAs(name, filePath, p);
  const realStore = await orMissing(realStoreOf(resolvedStore));

  // The common case, one lstat: an upload's file sits directly in the store and is no symlink, so
  // its real path is the store's real path and its name.
  if (path.dirname(resolved) === resolvedStore) {
    const entry = await orMissing(fs.lstat(resolved));
    if (entry.isFile()) return { realPath: path.join(realStore, path.basename(resolved)), size: entry.size };
  }

  const realPath = await orMissing(fs.realpath(filePath));
  // Then the real one: a symlink in the store (or a symlinked directory) must not lead outside.
  if (!isBelow(realStore, realPath))
    throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, name, `${filePath} -> ${realPath}`);

  const stat = await orMissing(fs.stat(realPath));
  if (!stat.isFile()) throw new TuspassError(ERRORS.ERR_FILE_MISSING, `${name} is not a regular file`, filePath);
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
async function missingAs<T>(name: string, filePath: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TuspassError(ERRORS.ERR_FILE_MISSING, name, filePath);
    throw e;
  }
}
