// Which finished uploads have had their completion handled (hooks answered, form delivered or
// queued). One line per upload appended to one file, one write each: far cheaper per upload than a
// marker file, and after a crash the finished uploads missing from it are the ones to announce.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { PRIVATE_MODES, writeAtomically } from '../../../core/file-modes.ts';

/** What the store needs of a journal: this file, or PostgreSQL's table (pg-journal.ts) shared by instances. */
export interface Journal {
  handled(id: string): Promise<void>;
  ids(): Promise<Set<string>>;
  /** Whether this upload's completion is noted (asked again under its claim, completion-sweep.ts). */
  has(id: string): Promise<boolean>;
  /** Keeps only these ids (uploads still in the store). */
  compact(keep: Set<string>): Promise<void>;
  close(): void;
}

export class CompletionJournal implements Journal {
  private fd: number | undefined;
  /** A write failed (a full disk) and may have left part of a line: the next one starts a fresh line. */
  private torn = false;

  /**
   * `shared`: the journal beside the uploads, appended to by every instance on the store (REDIS_URL
   * without DATABASE_URL). It is then never rewritten: the rename would leave the other instances
   * appending to the file it replaced, and lose the lines they add meanwhile; two instances starting
   * together would rename over each other. It grows by one line per finished upload instead.
   */
  constructor(
    private readonly file: string,
    private readonly mode = PRIVATE_MODES.file,
    private readonly shared = false,
  ) {}

  /** Opened with its mode, and the mode set on the descriptor: also fixes a journal an earlier version left 0644. */
  private open(): number {
    const fd = fs.openSync(this.file, 'a', this.mode);
    fs.fchmodSync(fd, this.mode);
    return fd;
  }

  async handled(id: string): Promise<void> {
    this.fd ??= this.open();
    const fd = this.fd;
    const line = `${this.torn ? '\n' : ''}${id}\n`;
    this.torn = true;
    await new Promise<void>((resolve, reject) =>
      fs.write(fd, line, (e, written) =>
        e
          ? reject(e)
          : written < Buffer.byteLength(line)
            ? reject(Object.assign(new Error('short write to the completion journal'), { code: 'ENOSPC' }))
            : resolve(),
      ),
    );
    this.torn = false;
  }

  async ids(): Promise<Set<string>> {
    const text = await fsp.readFile(this.file, 'utf8').catch(() => '');
    return new Set(text.split('\n').filter(Boolean));
  }

  async has(id: string): Promise<boolean> {
    return (await this.ids()).has(id);
  }

  /** Rewrites the journal with only the ids still wanted (uploads still in the store). */
  async compact(keep: Set<string>): Promise<void> {
    if (this.shared) return;
    this.close();
    await writeAtomically(this.file, [...keep].map((id) => `${id}\n`).join(''), this.mode);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
