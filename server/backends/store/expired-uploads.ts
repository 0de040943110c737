// The expiration extension's sweep (expiry.ts schedules it): removes unfinished uploads past their
// expiry (stored-upload.ts expiresAt: idle for EXPIRE_AFTER, or no byte for EXPIRE_UNSTARTED_AFTER).
// FileStore's own sweep compares the size with the offset saved at creation (always 0), so it would
// remove finished uploads too, and its listing misses uploads that have files beside them; this one
// looks at the file on disk.
import fsp from 'node:fs/promises';
import type { Upload } from '@tus/utils';
import type { Log } from '../../../core/logger.ts';
import type { StorePaths } from './store-paths.ts';
import { expiresAt, idsBy, readStored, type ExpiryPeriods } from './stored-upload.ts';

export interface ExpiredUploadsDeps {
  paths: StorePaths;
  info: { get(id: string): Promise<Upload | undefined> };
  periods: ExpiryPeriods;
  /** An upload being written to is active, however long since its last completed write. */
  inUse(id: string): boolean;
  remove(id: string): Promise<void>;
  log: Log;
}

/** Removes the expired uploads; returns how many. */
export async function removeExpired({ paths, info, periods, inUse, remove, log }: ExpiredUploadsDeps): Promise<number> {
  if (periods.afterLastWrite <= 0 && periods.unstarted <= 0) return 0;
  let removed = 0;
  for (const id of idsBy(await fsp.readdir(paths.dir), '.json')) {
    if (inUse(id)) continue;
    const { info: upload, file } = await readStored(id, info, paths);
    const at = expiresAt(upload, file, periods);
    if (at === undefined || Date.now() <= at) continue;
    if (
      !(await remove(id).then(
        () => true,
        () => false,
      ))
    )
      continue;
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
