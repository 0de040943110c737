// One upload as the store holds it, read the same way by the start-up pass and the expiry sweep:
// its info file and its file on disk.
import type { Stats } from 'node:fs';
import fsp from 'node:fs/promises';
import type { Upload } from '@tus/utils';
import type { StoredInfo } from './announcements.ts';
import type { StorePaths } from './store-paths.ts';

export interface StoredUpload {
  /** Undefined when the info file is missing or unreadable. */
  info: StoredInfo | undefined;
  /** Undefined when the upload's file is gone. */
  file: Stats | undefined;
}

export async function readStored(id: string, info: { get(id: string): Promise<Upload | undefined> }, paths: StorePaths): Promise<StoredUpload> {
  return {
    info: (await info.get(id)) as StoredInfo | undefined,
    file: await fsp.stat(paths.filePath(id)).catch(() => undefined),
  };
}
