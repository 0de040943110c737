// The start-up pass over the store — one listing, each unfinished upload's info read once — before
// anything listens:
// - checksummed PATCHes cut short by a stop are undone (unverified-marks.ts);
// - finished uploads whose completion was never handled (the process stopped in between) are
//   returned: complete on disk and missing from the journal. The journal is trimmed to the uploads
//   still stored;
// - unfinished uploads are entered in the free-space ledger (what they are owed, and their owner's
//   totals for the per-owner limits);
// - an upload written in segments (the resumable mode, StoredInfo.resumable) is never taken for a
//   finished one by its file's size: out-of-order segments make it full length with holes in it. It
//   is owed what its session has not received;
// - a file part of a multipart request still marked (StoredInfo.resumable 'multipart') belongs to a
//   request the process stopped in the middle of: its form was never posted and its client never
//   answered, so nobody finished it. It is removed, owing nothing (on a shared store it may be a
//   request running on another instance: kept, unfinished, for that request or its expiry);
// - leftovers of a crash go: temp files of digest states and info files (a kill between write and
//   rename), digest states of uploads whose completion was handled or that are gone, and info
//   files whose upload file is gone (a kill during a removal).
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Upload } from '@tus/utils';
import type { Log } from '../../../core/logger.ts';
import type { SpaceLedger } from './space-ledger.ts';
import { storedOwnerKey } from '../../auth/upload-owner.ts';
import type { Journal } from '../journal/completion-journal.ts';
import { TEMP_FILE, type StorePaths } from './store-paths.ts';
import { idsBy, readStored } from './stored-upload.ts';
import type { UnverifiedMarks } from './unverified-marks.ts';

export interface StartPassDeps {
  paths: StorePaths;
  info: { get(id: string): Promise<Upload | undefined> };
  journal: Journal;
  space: SpaceLedger;
  marks: UnverifiedMarks;
  /** A store shared by several instances (REDIS_URL): markers and temp files may be another instance's, in use. */
  shared: boolean;
  /** The bytes an upload written in segments has received, by its session's state (none: 0). */
  received?: (id: string) => number | undefined;
  log?: Log;
}

/** Runs the pass; returns the finished uploads whose completion is still to be handled. */
export async function awaitingCompletion({
  paths,
  info,
  journal,
  space,
  marks,
  shared,
  received,
  log,
}: StartPassDeps): Promise<string[]> {
  const names = await fsp.readdir(paths.dir);
  // On a shared store, a marker may belong to a PATCH running on another instance right now: not undone here.
  if (!shared) await marks.undoAll(names);
  const handled = await journal.ids();
  const present = new Set(names);
  const waiting: string[] = [];
  const stored = new Set<string>();
  // Shared store: another instance's temp files, about to be renamed, stay.
  const leftovers = shared ? [] : names.filter((name) => TEMP_FILE.test(name));
  for (const id of idsBy(names, '.json')) {
    if (!present.has(id)) {
      leftovers.push(`${id}.json`);
      continue;
    }
    stored.add(id);
    // Handled: finished and announced; its digest state is no longer needed.
    if (handled.has(id)) {
      if (present.has(`${id}.digest`)) leftovers.push(`${id}.digest`);
      continue;
    }
    const { info: upload, file } = await readStored(id, info, paths);
    if (!upload || !file) continue;
    if (upload.resumable === 'multipart' && !shared) {
      // The file first: a stop in between leaves an info file without its upload, a leftover above.
      leftovers.push(id, `${id}.json`);
      stored.delete(id);
      log?.(`upload ${id}: a part of a multipart request that never finished (the process stopped): removed`);
      continue;
    }
    if (upload.resumable === 'multipart') {
      space.restore(id, storedOwnerKey(upload), upload.size, file.size);
      continue;
    }
    if (upload.resumable) {
      const got = received?.(id) ?? 0;
      space.restore(id, storedOwnerKey(upload), upload.size, got);
      space.segments(id, got);
      continue;
    }
    if (upload.size === file.size) waiting.push(id);
    else if (upload.size === undefined || file.size < upload.size)
      space.restore(id, storedOwnerKey(upload), upload.size, file.size);
  }
  for (const id of idsBy(names, '.digest')) if (!stored.has(id)) leftovers.push(`${id}.digest`);
  for (const name of leftovers) await fsp.rm(path.join(paths.dir, name), { force: true });
  await journal.compact(new Set([...handled].filter((id) => stored.has(id))));
  return waiting;
}
