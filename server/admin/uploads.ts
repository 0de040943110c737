// `tuspass uploads list [--unfinished]`: the uploads in STORE_DIR, read from their info files
// (<id>.json) and data files, as the server sees them: the offset is the data file's size, the
// expiry EXPIRE_AFTER after the last write (server/pipeline/expiry.ts). The same reading of the store as
// the server's (server/backends/store/stored-upload.ts), synchronous: a command has nothing else to do.
// With S3_BUCKET the uploads are the records in the bucket under S3_PREFIX (store/s3/s3-inventory.ts):
// the offset is what the parts sent and the tail hold, finished once the object is complete.
import fs from 'node:fs';
import path from 'node:path';
import { UPLOAD_ID } from '../../core/wire.ts';
import type { Config } from '../config/config.ts';
import { s3ClientOf } from '../backends/store/s3/s3-client.ts';
import { bucketRecords } from '../backends/store/s3/s3-inventory.ts';
import { recordOffset, S3Keys } from '../backends/store/s3/s3-record.ts';
import { expiresAt, idsBy, lastWriteAt, type ExpiryPeriods } from '../backends/store/stored-upload.ts';
import { ADMIN_EXIT, parseAdminArgs, printJson, span, table, UsageError } from './output.ts';

export interface UploadRow {
  id: string;
  /** Undefined while the length is deferred. */
  size?: number;
  offset: number;
  finished: boolean;
  createdAt?: string;
  /** When an unfinished upload expires (undefined: finished, or it never will: EXPIRE_AFTER=0 and it received a
   * byte). */
  expiresAt?: string;
  owner?: string;
  name?: string;
}

interface Info {
  size?: number;
  creation_date?: string;
  metadata?: Record<string, string | null>;
  owner?: string;
}

/** One upload's row: its info, and the bytes stored (how many, when last written). */
function rowOf(
  id: string,
  info: Info,
  data: { size: number; mtimeMs: number } | undefined,
  finished: boolean,
  periods: ExpiryPeriods,
): UploadRow {
  const created = info.creation_date ? Date.parse(info.creation_date) : NaN;
  const expires = lastWriteAt(info, data) > 0 ? expiresAt(info, data, periods) : undefined;
  return {
    id,
    size: info.size,
    offset: data?.size ?? 0,
    finished,
    createdAt: Number.isFinite(created) ? new Date(created).toISOString() : undefined,
    expiresAt: expires !== undefined ? new Date(expires).toISOString() : undefined,
    owner: typeof info.owner === 'string' && info.owner ? info.owner : undefined,
    name: info.metadata?.filename ?? info.metadata?.name ?? undefined,
  };
}

const byCreation = (rows: UploadRow[]) => rows.sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? ''));

export function listUploads(storeDir: string, periods: ExpiryPeriods): UploadRow[] {
  let names: string[];
  try {
    names = fs.readdirSync(storeDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const rows: UploadRow[] = [];
  for (const id of idsBy(names, '.json')) {
    if (!UPLOAD_ID.test(id)) continue;
    let info: Info;
    try {
      info = JSON.parse(fs.readFileSync(path.join(storeDir, `${id}.json`), 'utf8')) as Info;
    } catch {
      continue;
    }
    const data = fs.statSync(path.join(storeDir, id), { throwIfNoEntry: false });
    rows.push(rowOf(id, info, data, info.size !== undefined && (data?.size ?? 0) === info.size, periods));
  }
  return byCreation(rows);
}

/** The uploads in the bucket (S3_BUCKET, under S3_PREFIX), and the records that could not be read. */
export async function listS3Uploads(
  config: Config,
  periods: ExpiryPeriods,
): Promise<{ rows: UploadRow[]; unreadable: string[] }> {
  const s3 = await s3ClientOf(config);
  try {
    const rows: UploadRow[] = [];
    const unreadable: string[] = [];
    for await (const { id, key, record, unreadable: why } of bucketRecords(
      s3,
      config.s3Bucket!,
      new S3Keys(config.s3Prefix),
    )) {
      if (!record) {
        unreadable.push(`${key}: ${why}`);
        continue;
      }
      const data = { size: recordOffset(record), mtimeMs: record.writtenAt };
      rows.push(rowOf(id, record.info, data, record.completed === true, periods));
    }
    return { rows: byCreation(rows), unreadable };
  } finally {
    s3.destroy();
  }
}

export async function uploadsCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'list') throw new UsageError(sub ? `unknown uploads command "${sub}"` : 'uploads needs a command: list');
  const { config, json, positional, flags } = parseAdminArgs(rest, ['--unfinished']);
  if (positional.length) throw new UsageError(`uploads list takes no argument, got "${positional[0]}"`);
  const unfinished = flags.has('--unfinished');
  const periods = { afterLastWrite: config.expireAfterMs, unstarted: config.expireUnstartedAfterMs };
  const where = config.s3Bucket ? `s3://${config.s3Bucket}/${config.s3Prefix}` : config.storeDir;
  let listed: { rows: UploadRow[]; unreadable: string[] };
  try {
    listed = config.s3Bucket
      ? await listS3Uploads(config, periods)
      : { rows: listUploads(config.storeDir, periods), unreadable: [] };
  } catch (e) {
    if (!config.s3Bucket) throw e;
    const name = (e as { name?: string }).name ?? 'Error';
    process.stderr.write(
      `tuspass uploads: ${where} could not be listed (${name}: ${(e as Error).message}); tuspass doctor checks the \
bucket and its settings\n`,
    );
    return ADMIN_EXIT.FAILED;
  }
  const { rows: all, unreadable } = listed;
  // Said on stderr, the list stays what scripts read: what doctor names in full.
  if (unreadable.length)
    process.stderr.write(
      `tuspass uploads: ${unreadable.length} record(s) in ${where} could not be read (tuspass doctor names them): ` +
        `${unreadable.slice(0, 5).join('; ')}\n`,
    );
  const rows = all.filter((r) => !unfinished || !r.finished);
  if (json) return (printJson(rows), ADMIN_EXIT.OK);
  if (!rows.length)
    return (process.stdout.write(`no ${unfinished ? 'unfinished ' : ''}uploads in ${where}\n`), ADMIN_EXIT.OK);
  const now = Date.now();
  const showOwner = rows.some((r) => r.owner);
  const headers = [
    'ID',
    'SIZE',
    'OFFSET',
    'AGE',
    'EXPIRES',
    ...(unfinished ? [] : ['STATE']),
    ...(showOwner ? ['OWNER'] : []),
    'NAME',
  ];
  process.stdout.write(
    table(
      headers,
      rows.map((r) => [
        r.id,
        r.size === undefined ? 'deferred' : String(r.size),
        String(r.offset),
        r.createdAt ? span(now - Date.parse(r.createdAt)) : '-',
        r.expiresAt
          ? `${r.expiresAt} ` +
            `(${Date.parse(r.expiresAt) < now ? 'expired' : `in ${span(Date.parse(r.expiresAt) - now)}`})`
          : '-',
        ...(unfinished ? [] : [r.finished ? 'finished' : 'unfinished']),
        ...(showOwner ? [r.owner ?? '-'] : []),
        r.name ?? '-',
      ]),
    ),
  );
  return ADMIN_EXIT.OK;
}
