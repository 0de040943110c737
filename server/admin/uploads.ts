// `tuspass uploads list [--unfinished]`: the uploads in STORE_DIR, read from their info files
// (<id>.json) and data files, as the server sees them: the offset is the data file's size, the
// expiry EXPIRE_AFTER after the last write (server/pipeline/expiry.ts). The same reading of the store as
// the server's (server/backends/store/stored-upload.ts), synchronous: a command has nothing else to do.
import fs from 'node:fs';
import path from 'node:path';
import { UPLOAD_ID } from '../../core/wire.ts';
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
    const offset = data?.size ?? 0;
    const finished = info.size !== undefined && offset === info.size;
    const created = info.creation_date ? Date.parse(info.creation_date) : NaN;
    const expires = lastWriteAt(info, data) > 0 ? expiresAt(info, data, periods) : undefined;
    rows.push({
      id,
      size: info.size,
      offset,
      finished,
      createdAt: Number.isFinite(created) ? new Date(created).toISOString() : undefined,
      expiresAt: expires !== undefined ? new Date(expires).toISOString() : undefined,
      owner: typeof info.owner === 'string' && info.owner ? info.owner : undefined,
      name: info.metadata?.filename ?? info.metadata?.name ?? undefined,
    });
  }
  return rows.sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? ''));
}

export function uploadsCommand(args: readonly string[]): number {
  const [sub, ...rest] = args;
  if (sub !== 'list') throw new UsageError(sub ? `unknown uploads command "${sub}"` : 'uploads needs a command: list');
  const { config, json, positional, flags } = parseAdminArgs(rest, ['--unfinished']);
  if (positional.length) throw new UsageError(`uploads list takes no argument, got "${positional[0]}"`);
  const unfinished = flags.has('--unfinished');
  const rows = listUploads(config.storeDir, {
    afterLastWrite: config.expireAfterMs,
    unstarted: config.expireUnstartedAfterMs,
  }).filter((r) => !unfinished || !r.finished);
  if (json) return (printJson(rows), ADMIN_EXIT.OK);
  if (!rows.length)
    return (
      process.stdout.write(`no ${unfinished ? 'unfinished ' : ''}uploads in ${config.storeDir}\n`), ADMIN_EXIT.OK
    );
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
