// Who may read what tuspass keeps. Uploads, their info and digest state, queued
// notices, the completion journal, the catalog and the secret are the owner's alone (files 0600,
// directories 0700). SHARED_GROUP_READ=true makes them group-readable (0640 / 0750) for a split
// deployment whose completion service runs as another user of the same group.
// Modes are given when a file is created, never left to the process umask; the umask can only take
// bits away, so a group-readable mode is also set explicitly (chmod) after creation.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { makeDirectory } from './make-directory.ts';

export interface FileModes {
  file: number;
  dir: number;
}

export const PRIVATE_MODES: FileModes = Object.freeze({ file: 0o600, dir: 0o700 });
export const GROUP_READ_MODES: FileModes = Object.freeze({ file: 0o640, dir: 0o750 });

export const fileModesOf = (config: { sharedGroupRead: boolean }): FileModes =>
  config.sharedGroupRead ? GROUP_READ_MODES : PRIVATE_MODES;

/** A mode the umask may have narrowed at creation: one that grants anything beyond the owner. */
export const needsChmod = (mode: number): boolean => (mode & 0o077) !== 0;

/** Writes a new file with `mode` (temp files of atomic writes: rename keeps the mode). */
async function writeFileWithMode(file: string, data: string | Buffer, mode: number): Promise<void> {
  await fsp.writeFile(file, data, { mode });
  if (needsChmod(mode)) await fsp.chmod(file, mode);
}

/**
 * Temp file + rename: a crash never leaves the file half-written, and a failed write (a full disk)
 * leaves no temp file behind. `tmp` names the temp file when several writers may save one file at once.
 */
export async function writeAtomically(
  file: string,
  data: string | Buffer,
  mode: number,
  tmp = `${file}.tmp`,
): Promise<void> {
  try {
    await writeFileWithMode(tmp, data, mode);
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** writeAtomically for the command line (`tuspass queue retry`), which has nothing else to do meanwhile. */
export function writeAtomicallySync(file: string, data: string | Buffer, mode: number, tmp = `${file}.tmp`): void {
  try {
    fs.writeFileSync(tmp, data, { mode });
    if (needsChmod(mode)) fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Creates a directory with `mode`, and sets the mode of one that exists (a DATA_DIR made 0755 by an
 * earlier version). A directory owned by someone else cannot be changed: said in the log, not fatal.
 */
export function ensureDirMode(dir: string, mode: number, setting: string, log: (line: string) => void): void {
  makeDirectory(dir, mode);
  try {
    if ((fs.statSync(dir).mode & 0o777) !== mode) fs.chmodSync(dir, mode);
  } catch (e) {
    log(
      `${setting}: could not set ${dir} to mode ${mode.toString(8)} ` +
        `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set it yourself`,
    );
  }
}
