// Notices the PostgreSQL queue (pg-queue.ts) could not store because PostgreSQL did not answer: kept
// on this instance's own disk (DATA_DIR/spool), each written whole before enqueue() returns — as the
// file queue keeps its notices (queue.ts) — and moved into PostgreSQL, under the same id, once it
// answers again. What waits here waits for this instance; a finished upload whose form waits here
// is announced meanwhile by another instance's completion sweep if this one dies, and the repeated
// form is dropped by the completion service.
import fs from 'node:fs/promises';
import path from 'node:path';
import { PRIVATE_MODES, writeAtomically, type FileModes } from '../core/file-modes.ts';
import { makeDirectory } from '../core/make-directory.ts';
import type { Log } from '../core/logger.ts';
import { NOTICE_ID, type Notice } from './notices.ts';

export class NoticeSpool {
  /** The ids of the notices on disk here. */
  private readonly waiting = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly log: Log,
    private readonly modes: FileModes = PRIVATE_MODES,
  ) {}

  /** Creates the directory and takes up what an earlier run left (a cut write's temporary file goes). */
  async open(): Promise<void> {
    makeDirectory(this.dir, this.modes.dir);
    await fs.chmod(this.dir, this.modes.dir);
    for (const name of await fs.readdir(this.dir)) {
      if (name.endsWith('.json')) this.waiting.add(name.slice(0, -'.json'.length));
      else if (name.endsWith('.tmp')) await fs.rm(path.join(this.dir, name), { force: true });
    }
  }

  /** How many notices wait here. */
  get size(): number {
    return this.waiting.size;
  }

  /** Written whole or not at all; throws when it cannot be (a full disk). */
  async put(notice: Notice): Promise<void> {
    await writeAtomically(this.file(notice.id), JSON.stringify(notice), this.modes.file);
    this.waiting.add(notice.id);
  }

  /**
   * Hands each notice to `store`, in turn, and removes the ones it took; the first failure (PostgreSQL
   * away again) ends the pass and is thrown. Returns how many moved.
   */
  async drain(store: (notice: Notice) => Promise<void>): Promise<number> {
    let moved = 0;
    for (const id of [...this.waiting]) {
      let notice: Notice;
      try {
        notice = JSON.parse(await fs.readFile(this.file(id), 'utf8')) as Notice;
      } catch (e) {
        // Gone or unreadable: nothing to move, never tried forever (as the file queue drops such a file).
        this.log(`queue: dropping spooled notice ${id}: it cannot be read (${(e as Error).message})`, {
          level: 'warn',
        });
        this.waiting.delete(id);
        await fs.rm(this.file(id), { force: true });
        continue;
      }
      await store(notice);
      await fs.rm(this.file(id), { force: true });
      this.waiting.delete(id);
      moved++;
    }
    return moved;
  }

  private file(id: string): string {
    if (!NOTICE_ID.test(id)) throw new Error(`queue: invalid notice id ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.json`);
  }
}
