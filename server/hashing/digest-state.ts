// The running digests of one upload (md5 always, sha1/crc32 when configured) and the number of bytes
// they cover. The hashing itself runs on the hashing thread (hash-thread.ts); the hashers' internal
// state is saved beside the upload after every PATCH, so a resumed upload — even after a server
// restart — continues hashing where it stopped instead of re-reading.
import fs from 'node:fs/promises';
import type { DigestName, Digests } from '../../core/wire.ts';
import { writeAtomically } from '../../core/file-modes.ts';
import { hashThread, type HashThread } from './hash-thread.ts';

/** A state as saved: beside the upload's file (save) or inside another store's record (snapshot). */
export interface SavedState {
  version: 1;
  offset: number;
  states: Partial<Record<DigestName, string>>;
}

/** The running digests of one upload: on the hashing thread (DigestState) or inline (inline-digests.ts). */
export interface RunningDigests {
  /** Bytes of the upload the hashers have seen, from byte 0. */
  offset: number;
  /** Whether a file holds (some version of) this state. */
  readonly onDisk: boolean;
  /** Whether save() can write it to disk (then a resumed upload continues from it). */
  readonly resumable: boolean;
  update(chunk: Uint8Array): void | Promise<void>;
  save(file: string, mode: number): Promise<void>;
  digests(): Promise<Digests>;
  release(): void;
}

export class DigestState implements RunningDigests {
  readonly resumable = true;
  private released = false;
  /** Whether a file holds (some version of) this state: loaded from one or saved to one. */
  onDisk = false;

  private constructor(
    /** Bytes of the upload the hashers have seen, from byte 0. */
    public offset: number,
    private readonly thread: HashThread,
    private readonly key: number,
  ) {}

  static async fresh(algorithms: readonly DigestName[]): Promise<DigestState> {
    const thread = await hashThread();
    return new DigestState(0, thread, thread.open([...algorithms]));
  }

  /** Loads a saved state; algorithms missing from it (configuration changed) make it unusable: returns undefined. */
  static async load(file: string, algorithms: readonly DigestName[]): Promise<DigestState | undefined> {
    const saved = await readSaved(file);
    return saved && DigestState.fromSnapshot(saved, algorithms);
  }

  /** A state from a snapshot() kept elsewhere (an object store's record); undefined as load() says. */
  static async fromSnapshot(saved: SavedState, algorithms: readonly DigestName[]): Promise<DigestState | undefined> {
    if (saved.version !== 1 || !Number.isSafeInteger(saved.offset) || !algorithms.every((name) => saved.states[name]))
      return undefined;
    const states: Partial<Record<DigestName, Uint8Array>> = {};
    for (const name of algorithms) states[name] = Buffer.from(saved.states[name]!, 'base64');
    const thread = await hashThread();
    const state = new DigestState(saved.offset, thread, thread.open([...algorithms], states));
    state.onDisk = true;
    return state;
  }

  /** Hashes a chunk (on the hashing thread). A promise means: too much waits to be hashed, wait for it. */
  update(chunk: Uint8Array): void | Promise<void> {
    this.offset += chunk.byteLength;
    return this.thread.update(this.key, chunk);
  }

  /**
   * Hashes bytes of a SharedArrayBuffer where they are (no copy): they must stay unchanged until a
   * later snapshot() or digests() resolves.
   */
  updateShared(view: Uint8Array): void {
    this.thread.updateShared(this.key, view);
    this.offset += view.byteLength;
  }

  /** Writes the state atomically (temp file + rename), so a crash never leaves half a state. */
  async save(file: string, mode: number): Promise<void> {
    const saved = await this.snapshot();
    // Named by process: a temp file left by a kill between write and rename is a stale one, removed
    // at the next start (backends/store/start-pass.ts).
    // A full disk cuts the temp file short: it goes, the state saved before stays.
    await writeAtomically(file, JSON.stringify(saved), mode, `${file}.${process.pid}.tmp`);
    this.onDisk = true;
  }

  /**
   * The state as it is once the chunks updated so far are hashed (asked for now, in order behind
   * them, so later updates do not enter it). Its offset is the one at the call.
   */
  async snapshot(): Promise<SavedState> {
    const offset = this.offset;
    const states = await this.thread.save(this.key);
    const saved: SavedState = { version: 1, offset, states: {} };
    for (const [name, bytes] of Object.entries(states))
      saved.states[name as DigestName] = Buffer.from(bytes).toString('base64');
    return saved;
  }

  /** The digests of the bytes seen so far, without ending the running hashes. */
  async digests(): Promise<Digests> {
    return { ...((await this.thread.digest(this.key)) as { md5: string }), size: this.offset };
  }

  /** Lets the hashing thread reuse the hashers; the state is unusable afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.thread.close(this.key);
  }
}

async function readSaved(file: string): Promise<SavedState | undefined> {
  let saved: SavedState;
  try {
    saved = JSON.parse(await fs.readFile(file, 'utf8')) as SavedState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || e instanceof SyntaxError) return undefined;
    throw e;
  }
  return saved.version === 1 && Number.isSafeInteger(saved.offset) ? saved : undefined;
}
