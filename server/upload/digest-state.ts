// The running digests of one upload (md5 always, sha1/crc32 when configured) and the number of bytes
// they cover. The hashers' internal state is saved beside the upload after every PATCH, so a resumed
// upload — even after a server restart — continues hashing where it stopped instead of re-reading.
import fs from 'node:fs/promises';
import { createCRC32, createMD5, createSHA1, type IHasher } from 'hash-wasm';
import type { DigestAlgorithm } from '../config.ts';

export type DigestName = 'md5' | DigestAlgorithm;
export type Digests = Partial<Record<DigestName, string>> & { md5: string; size: number };

const FACTORIES: Record<DigestName, () => Promise<IHasher>> = {
  md5: createMD5,
  sha1: createSHA1,
  crc32: () => createCRC32(),
};

/**
 * Each hash-wasm hasher is its own WebAssembly instance, costly to start (a profile of many small
 * uploads showed instantiation among the top costs): hashers are reused.
 */
const POOL_LIMIT = 64;
const pool: Record<DigestName, IHasher[]> = { md5: [], sha1: [], crc32: [] };

async function acquire(name: DigestName): Promise<IHasher> {
  return (pool[name].pop() ?? (await FACTORIES[name]())).init();
}

function release(name: DigestName, hasher: IHasher): void {
  if (pool[name].length < POOL_LIMIT) pool[name].push(hasher);
}

interface SavedState {
  version: 1;
  offset: number;
  states: Partial<Record<DigestName, string>>;
}

export class DigestState {
  private released = false;
  /** Whether a file holds (some version of) this state: loaded from one or saved to one. */
  onDisk = false;

  private constructor(
    /** Bytes of the upload the hashers have seen, from byte 0. */
    public offset: number,
    private readonly hashers: Map<DigestName, IHasher>,
  ) {}

  static async fresh(algorithms: readonly DigestName[]): Promise<DigestState> {
    const hashers = new Map<DigestName, IHasher>();
    for (const name of algorithms) hashers.set(name, await acquire(name));
    return new DigestState(0, hashers);
  }

  /** Loads a saved state; algorithms missing from it (configuration changed) make it unusable: returns undefined. */
  static async load(file: string, algorithms: readonly DigestName[]): Promise<DigestState | undefined> {
    const saved = await readSaved(file);
    if (!saved) return undefined;
    if (!algorithms.every((name) => saved.states[name])) return undefined;
    const hashers = new Map<DigestName, IHasher>();
    for (const name of algorithms) {
      const hasher = await acquire(name);
      hasher.load(Buffer.from(saved.states[name]!, 'base64'));
      hashers.set(name, hasher);
    }
    const state = new DigestState(saved.offset, hashers);
    state.onDisk = true;
    return state;
  }

  update(chunk: Uint8Array): void {
    for (const h of this.hashers.values()) h.update(chunk);
    this.offset += chunk.byteLength;
  }

  /** Writes the state atomically (temp file + rename), so a crash never leaves half a state. */
  async save(file: string): Promise<void> {
    const saved: SavedState = { version: 1, offset: this.offset, states: {} };
    for (const [name, h] of this.hashers) saved.states[name] = Buffer.from(h.save()).toString('base64');
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(saved));
    await fs.rename(tmp, file);
    this.onDisk = true;
  }

  /** The digests of the bytes seen so far, without ending the running hashes. */
  async digests(): Promise<Digests> {
    const out: Partial<Record<DigestName, string>> = {};
    for (const [name, h] of this.hashers) {
      const copy = await acquire(name);
      copy.load(h.save());
      out[name] = copy.digest('hex');
      release(name, copy);
    }
    return { ...(out as { md5: string }), size: this.offset };
  }

  /** Gives the hashers back to the pool; the state is unusable afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const [name, h] of this.hashers) release(name, h);
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
