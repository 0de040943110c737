// Resumable sessions outlive a restart, as the nginx upload module's state files do: each session's
// state (its Session-ID, owner, upload id, total, ranges received, name, content type) sits beside its
// upload in the store as `<upload id>.session`, written whole to a temp file and renamed (a crash
// leaves the old state or the new one, never half of one), with the store's file mode. Loaded at
// start; a state whose upload is gone (expired, removed while the server was down) is dropped. The
// state is removed when the session completes or is swept.
// The ranges are written after their bytes: a crash in between loses only the claim, and the client
// sends that segment again.
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../../../core/logger.ts';
import { writeAtomically } from '../../../core/file-modes.ts';
import { UPLOAD_ID } from '../../../core/wire.ts';

export type Range = [start: number, end: number];

export interface SessionRecord {
  sessionId: string;
  owner: string;
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

const isRange = (r: unknown): r is Range => Array.isArray(r) && r.length === 2 && r.every((n) => Number.isSafeInteger(n) && n >= 0) && r[0] <= r[1];

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

  private pathOf(uploadId: string): string {
    return path.join(this.dir, `${uploadId}${SUFFIX}`);
  }

  async save(record: SessionRecord): Promise<void> {
    const file = this.pathOf(record.uploadId);
    await writeAtomically(file, JSON.stringify(record), this.fileMode, `${file}.${process.pid}.${++this.serial}.tmp`);
  }

  async remove(uploadId: string): Promise<void> {
    await fsp.rm(this.pathOf(uploadId), { force: true });
  }

  /** Every session left by the last run whose upload is still stored; the others' states go. */
  async load(): Promise<SessionRecord[]> {
    const out: SessionRecord[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      // A crash between write and rename.
      if (TEMP.test(name)) {
        await fsp.rm(path.join(this.dir, name), { force: true }).catch(() => undefined);
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      const file = path.join(this.dir, name);
      const record = parseRecord(await fsp.readFile(file, 'utf8').catch(() => ''));
      const id = name.slice(0, -SUFFIX.length);
      const stored = record?.uploadId === id && (await fsp.stat(path.join(this.dir, id)).then(() => fsp.stat(path.join(this.dir, `${id}.json`))).then(() => true, () => false));
      if (!record || !stored) {
        this.log(`resumable: dropping the session state ${name}: ${record ? 'its upload is gone' : 'not a session state'}`);
        await fsp.rm(file, { force: true }).catch(() => undefined);
        continue;
      }
      out.push(record);
    }
    return out;
  }
}
