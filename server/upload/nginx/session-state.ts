// Resumable sessions live in state files in the store, as the nginx upload module keeps its state
// files: one per session, named by the session's key — a hash of (owner, Session-ID), so any
// instance on the store finds a session from a segment's headers alone — holding its upload id,
// total, the ranges received, name, content type and when it last moved. The state is read under
// the session's lock at every segment, so every instance sees the ranges the others recorded.
//
// Written whole to a temp file and renamed (a crash leaves the old state or the new one, never half
// of one), with the store's file mode. The ranges are written after their bytes: a crash in between
// loses only the claim, and the client sends that segment again.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../../../core/logger.ts';
import { writeAtomically } from '../../../core/file-modes.ts';
import { UPLOAD_ID } from '../../../core/wire.ts';
import type { Range } from './byte-ranges.ts';

export interface SessionRecord {
  sessionId: string;
  /** The token's `sub` ('' when anonymous): part of the session's key, and the form's owner. */
  owner: string;
  /** Whose share of RESUMABLE_SESSIONS_MAX the session counts against (upload-owner.ts ownerKey). */
  holder: string;
  uploadId: string;
  total: number;
  ranges: Range[];
  name: string;
  contentType: string;
  /** When the session last moved, ms since the epoch. */
  touched: number;
}

const SUFFIX = '.session';
const TEMP = /\.session\.\d+\.\d+\.tmp$/;

/**
 * The key a session is found by: the same for every instance, never a path a caller chooses. Whose
 * it is: the token's subject, or for an anonymous caller its address (its holder, upload-owner.ts
 * ownerKey) — Session-IDs are the client's choice, often a small number, and a session any address
 * could join would take the bytes of whoever sent a range first as the owner's.
 */
export const sessionKey = (who: Pick<SessionRecord, 'owner' | 'holder' | 'sessionId'>): string =>
  crypto
    .createHash('sha256')
    .update(`${who.owner || who.holder}\n${who.sessionId}`)
    .digest('hex');

const isRange = (r: unknown): r is Range =>
  Array.isArray(r) && r.length === 2 && r.every((n) => Number.isSafeInteger(n) && n >= 0) && r[0] <= r[1];

/** A record read back, or undefined when it is not one this version wrote. */
function parseRecord(text: string): SessionRecord | undefined {
  let v: Partial<SessionRecord>;
  try {
    v = JSON.parse(text) as Partial<SessionRecord>;
  } catch {
    return undefined;
  }
  const ok =
    typeof v.sessionId === 'string' &&
    typeof v.owner === 'string' &&
    typeof v.holder === 'string' &&
    typeof v.uploadId === 'string' &&
    UPLOAD_ID.test(v.uploadId) &&
    Number.isSafeInteger(v.total) &&
    Array.isArray(v.ranges) &&
    v.ranges.every(isRange) &&
    v.ranges.every((r) => r[1] < v.total!) &&
    typeof v.name === 'string' &&
    typeof v.contentType === 'string' &&
    Number.isFinite(v.touched);
  return ok ? (v as SessionRecord) : undefined;
}

export class SessionStates {
  private serial = 0;

  constructor(
    private readonly dir: string,
    private readonly fileMode: number,
    private readonly log: Log,
  ) {}

  private pathOf(key: string): string {
    return path.join(this.dir, `${key}${SUFFIX}`);
  }

  /** The session's state, or undefined when there is none (or it is unreadable: the session starts over). */
  async read(key: string): Promise<SessionRecord | undefined> {
    const text = await fsp.readFile(this.pathOf(key), 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (text === undefined) return undefined;
    const record = parseRecord(text);
    if (record && sessionKey(record) === key) return record;
    this.log(`resumable: the session state ${key}${SUFFIX} is not one this version reads; the session starts over`, {
      level: 'warn',
    });
    return undefined;
  }

  async save(record: SessionRecord): Promise<void> {
    const file = this.pathOf(sessionKey(record));
    await writeAtomically(file, JSON.stringify(record), this.fileMode, `${file}.${process.pid}.${++this.serial}.tmp`);
  }

  async remove(record: Pick<SessionRecord, 'owner' | 'holder' | 'sessionId'>): Promise<void> {
    await fsp.rm(this.pathOf(sessionKey(record)), { force: true });
  }

  /**
   * Every session state in the store (at start); unreadable ones go. `shared`: another instance uses
   * the store, and a temp file may be its write in progress.
   */
  async load(shared: boolean): Promise<SessionRecord[]> {
    const out: SessionRecord[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      // A crash between write and rename.
      if (TEMP.test(name)) {
        if (!shared) await fsp.rm(path.join(this.dir, name), { force: true }).catch(() => undefined);
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      const file = path.join(this.dir, name);
      const record = parseRecord(await fsp.readFile(file, 'utf8').catch(() => ''));
      if (!record || name !== `${sessionKey(record)}${SUFFIX}`) {
        this.log(`resumable: dropping ${name}: not a session state`);
        await fsp.rm(file, { force: true }).catch(() => undefined);
        continue;
      }
      out.push(record);
    }
    return out;
  }
}
