// An upload's files at creation: its empty file, with the store's mode, then its info in one write.
// FileStore.create, without its mkdir for ids that sit directly in the store (all of ours, the
// directory exists since the constructor), with the announced fields in the one info write, and
// with 'wx': a file already there is another upload's (two creations a pre-create hook gave one id
// at the same moment both pass upload-events.ts's existence check), never emptied by this one.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { needsChmod } from '../../../core/file-modes.ts';
import { makeDirectory } from '../../../core/make-directory.ts';

/** The id is taken: refused as upload-events.ts refuses a hook's choice of an existing upload's id. */
export const idTaken = (id: string): TuspassError =>
  new TuspassError(
    ERRORS.ERR_HOOK_FAILED,
    'the pre-create hook chose the id of an existing upload',
    `ChangeFileInfo.ID ${JSON.stringify(id)}`,
  );

export const isIdTaken = (e: unknown): boolean => (e as NodeJS.ErrnoException | undefined)?.code === 'EEXIST';

/**
 * Creates the empty file, then runs `writeInfo`; half a creation (an empty file, a cut info file) is
 * removed whole. A file already there (EEXIST, see isIdTaken) is left as it is: it is not this creation's.
 */
export async function createUploadFiles(
  dir: string,
  file: string,
  mode: number,
  writeInfo: () => Promise<void>,
): Promise<void> {
  try {
    if (path.dirname(file) !== dir) makeDirectory(path.dirname(file));
    // Callback fs: fs/promises opens a FileHandle per call, a cost seen in profiles of many small uploads.
    await new Promise<void>((resolve, reject) =>
      fs.open(file, 'wx', mode, (e, fd) => {
        if (e) return reject(e);
        // The umask may have narrowed a group-readable mode: set it on the descriptor.
        const close = (e1?: Error | null) => fs.close(fd, (e2) => (e1 || e2 ? reject(e1 ?? e2) : resolve()));
        if (needsChmod(mode)) fs.fchmod(fd, mode, close);
        else close();
      }),
    );
    await writeInfo();
  } catch (e) {
    // Only the open can meet EEXIST: the files are the other upload's.
    if (isIdTaken(e)) throw e;
    // No upload anyone can reach: gone.
    await fsp.rm(file, { force: true }).catch(() => undefined);
    await fsp.rm(`${file}.json`, { force: true }).catch(() => undefined);
    throw e;
  }
}
