// The expiration extension's sweep (expiry.ts schedules it): removes unfinished uploads idle for
// longer than the expiration period. FileStore's own sweep compares the size with the offset saved at
// creation (always 0), so it would remove finished uploads too, and its listing misses uploads that
// have files beside them; this one looks at the file on disk.
import fsp from 'node:fs/promises';
import type { Upload } from '@tus/utils';
import type { Log } from '../../../core/logger.ts';
import type { StorePaths } from './store-paths.ts';
import { idsBy, lastWriteAt, readStored } from './stored-upload.ts';

export interface ExpiredUploadsDeps {
  paths: StorePaths;
  info: { get(id: string): Promise<Upload | undefined> };
  /** The expiration period (ms); 0 or less: uploads never expire. */
  period: number;
  /** An upload being written to is active, however long since its last completed write. */
  inUse(id: string): boolean;
  remove(id: string): Promise<void>;
  log: Log;
}

/** Removes the expired uploads; returns how many. */
export async function removeExpired({ paths, info, period, inUse, remove, log }: ExpiredUploadsDeps): Promise<number> {
  if (period <= 0) return 0;
  let removed = 0;
  for (const id of idsBy(await fsp.readdir(paths.dir), '.json')) {
    if (inUse(id)) continue;
    const { info: upload, file } = await readStored(id, info, paths);
    // Finished (full length), unless written in segments: that file may be full length with holes.
    if (upload?.size !== undefined && file?.size === upload.size && !upload.resumable) continue;
    // Expired once nothing was written for the period (see expiry.ts).
    if (Date.now() <= lastWriteAt(upload, file) + period) continue;
    if (!(await remove(id).then(() => true, () => false))) continue;
    removed++;
    const owner: unknown = upload?.owner;
    log(`upload ${id} expired: removed with ${file?.size ?? 0} of ${upload?.size ?? 'unknown'} bytes received`, {
      event: 'upload.expired',
      upload_id: id,
      offset: file?.size ?? 0,
      size: upload?.size,
      owner: typeof owner === 'string' && owner ? owner : undefined,
    });
  }
  return removed;
}
