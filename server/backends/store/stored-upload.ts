// The uploads as the store holds them, read the same way by the start-up pass, the expiry sweep and
// `tuspass uploads list`: the store's listing, each upload's info file and its file on disk.
import type { Stats } from 'node:fs';
import fsp from 'node:fs/promises';
import type { Upload } from '@tus/utils';
import type { Journal } from '../journal/completion-journal.ts';
import type { OpenMark, StoredInfo } from './stored-info.ts';
import type { StorePaths } from './store-paths.ts';

/** The ids of the store's entries named `<id><suffix>` (`.json`: the uploads, each has an info file). */
export const idsBy = (names: readonly string[], suffix: string): string[] =>
  names.filter((name) => name.endsWith(suffix)).map((name) => name.slice(0, -suffix.length));

/**
 * When the upload was last written to — its creation, before any write: expiry counts from here
 * (expiry.ts). A creation date that does not parse counts as none.
 */
export function lastWriteAt(
  info: { creation_date?: string } | undefined,
  file: { mtimeMs: number } | undefined,
): number {
  const created = info?.creation_date ? Date.parse(info.creation_date) : 0;
  return Math.max(Number.isFinite(created) ? created : 0, file?.mtimeMs ?? 0);
}

/** The expiration extension's periods, in ms (0 or less: that rule is off). */
export interface ExpiryPeriods {
  /** EXPIRE_AFTER: an unfinished upload expires this long after its last write (or its creation, before any). */
  afterLastWrite: number;
  /** EXPIRE_UNSTARTED_AFTER: an upload that received no byte expires this long after its creation. */
  unstarted: number;
}

/**
 * When an unfinished upload expires (ms since the epoch), or undefined if it never will (finished,
 * or no period set): the one rule the expiry sweep, HEAD, PATCH, the creation's answer and
 * `tuspass uploads list` read. An upload that received no byte holds its owner's share and the
 * store's space without using them: it goes after EXPIRE_UNSTARTED_AFTER (its first byte starts
 * EXPIRE_AFTER's count instead).
 */
export function expiresAt(
  info: { size?: number; creation_date?: string; resumable?: OpenMark } | undefined,
  file: { size: number; mtimeMs: number } | undefined,
  periods: ExpiryPeriods,
): number | undefined {
  // Finished (full length), unless a request of the nginx module still writes it (StoredInfo.resumable):
  // a session's file may be full length with holes, a multipart part awaits its request's end.
  if (info?.size !== undefined && file?.size === info.size && !info.resumable) return undefined;
  const at: number[] = [];
  if (periods.afterLastWrite > 0) at.push(lastWriteAt(info, file) + periods.afterLastWrite);
  if (periods.unstarted > 0 && (file?.size ?? 0) === 0) {
    const created = info?.creation_date ? Date.parse(info.creation_date) : NaN;
    at.push((Number.isFinite(created) ? created : lastWriteAt(info, file)) + periods.unstarted);
  }
  return at.length ? Math.min(...at) : undefined;
}

export interface StoredUpload {
  /** Undefined when the info file is missing or unreadable. */
  info: StoredInfo | undefined;
  /** Undefined when the upload's file is gone. */
  file: Stats | undefined;
}

export async function readStored(
  id: string,
  info: { get(id: string): Promise<Upload | undefined> },
  paths: StorePaths,
): Promise<StoredUpload> {
  return {
    info: (await info.get(id)) as StoredInfo | undefined,
    file: await fsp.stat(paths.filePath(id)).catch(() => undefined),
  };
}

/**
 * Finished uploads (the file as long as the declared length) that the journal does not have. An
 * upload a request of the nginx module still writes (StoredInfo.resumable) is never finished by its
 * size: a session's file may be full length with holes, a multipart part awaits its request's end.
 */
export async function finishedUnannounced(
  paths: StorePaths,
  info: { get(id: string): Promise<Upload | undefined> },
  journal: Journal,
): Promise<string[]> {
  const names = await fsp.readdir(paths.dir);
  const handled = await journal.ids();
  const present = new Set(names);
  const found: string[] = [];
  for (const id of idsBy(names, '.json')) {
    if (handled.has(id) || !present.has(id)) continue;
    const { info: upload, file } = await readStored(id, info, paths);
    if (upload?.size !== undefined && file?.size === upload.size && !(upload as StoredInfo).resumable) found.push(id);
  }
  return found;
}
