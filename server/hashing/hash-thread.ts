// The main thread's side of the hashing thread (hash-worker.ts): one worker for the process, started
// on first use. A chunk to hash is copied into the shared ring and announced by a message; answers
// come back in order. When the ring is full, writers wait: memory stays at the ring's size.
// A thread with no upload's hashers open and nothing asked goes after idleMs (a thread is about
// 11 MB of resident memory); the next upload that needs one starts another.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { hashRingWaits } from '../ops/metrics.ts';
import { PACKAGE_ROOT } from '../config/package-root.ts';
import {
  CONTROL_BYTES,
  controlViews,
  RING_BYTES,
  type HashReply,
  type HashRequest,
  type HasherName,
  type OpenHashers,
} from './hash-protocol.ts';

/** Largest piece announced at once (a quarter of the ring, so several uploads interleave). */
const PIECE = RING_BYTES / 4;

/** How long an idle thread is kept (changed by tests only). */
let idleMs = 30_000;
export function setHashThreadIdleMs(ms: number): void {
  idleMs = ms;
}

interface Pending {
  resolve(reply: HashReply): void;
  reject(error: Error): void;
}

class HashThread {
  private readonly worker: Worker;
  private readonly ring = new Uint8Array(new SharedArrayBuffer(RING_BYTES));
  private readonly control = new SharedArrayBuffer(CONTROL_BYTES);
  private readonly views = controlViews(this.control);
  private readonly pending = new Map<number, Pending>();
  private readonly broken = new Map<number, string>();
  /** Keys opened here and not yet announced to the worker: the open travels with their first request. */
  private readonly unannounced = new Map<number, OpenHashers>();
  private closing: number[] = [];
  private waiters: Array<() => void> = [];
  private nextId = 1;
  private nextKey = 1;
  /** Keys opened and not closed: hashers (and their states) that live on the thread. */
  private readonly openKeys = new Set<number>();
  private idle: NodeJS.Timeout | undefined;
  /** Bytes ever written into the ring (its write position, before wrapping). */
  private written = 0;
  private dead: Error | undefined;

  constructor(source: string) {
    this.worker = new Worker(source, {
      eval: true,
      workerData: { ring: this.ring.buffer, control: this.control },
      // The thread allocates only small messages, which die at once: a 2 MB young generation
      // (V8's default grows to 48 MB) is plenty, and saves its size in resident memory under load.
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    this.worker.on('message', (m: HashReply) => this.onReply(m));
    const die = (e: Error) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      this.wake();
      if (thread === this) thread = undefined;
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`hash thread exited with code ${code}`)));
    // After the listeners: adding a 'message' listener refs the thread again. An idle thread must not
    // keep the process alive (it may never be used: small uploads are hashed inline).
    this.worker.unref();
  }

  open(names: HasherName[], states?: Partial<Record<HasherName, Uint8Array>>): number {
    const key = this.nextKey++;
    this.openKeys.add(key);
    clearTimeout(this.idle);
    this.unannounced.set(key, { names, states });
    return key;
  }

  /** Hands a chunk over; a promise when it had to wait for room in the ring (updates stay in order). */
  update(key: number, chunk: Uint8Array): void | Promise<void> {
    // A dead thread hashes nothing: fail the write now rather than at its save.
    if (this.dead) throw this.dead;
    if (chunk.byteLength <= PIECE && this.free() >= chunk.byteLength) return this.put(key, chunk);
    return this.updateWhenRoom(key, chunk);
  }

  /**
   * Hands over bytes of a shared buffer without copying them: the caller leaves them unchanged until
   * a later save() or digest() of the key is answered (the thread has hashed them by then).
   */
  updateShared(key: number, view: Uint8Array): void {
    if (this.dead) throw this.dead;
    if (!(view.buffer instanceof SharedArrayBuffer))
      throw new TypeError('updateShared takes a view of a SharedArrayBuffer');
    this.post({
      op: 'update-shared',
      key,
      open: this.opening(key),
      buffer: view.buffer,
      start: view.byteOffset,
      length: view.byteLength,
    });
  }

  async save(key: number): Promise<Partial<Record<HasherName, Uint8Array>>> {
    const r = await this.ask(key, (id) => ({ op: 'save', key, open: this.opening(key), id }));
    return (r as Extract<HashReply, { op: 'saved' }>).states;
  }

  async digest(key: number): Promise<Partial<Record<HasherName, string>>> {
    const r = await this.ask(key, (id) => ({ op: 'digest', key, open: this.opening(key), id }));
    return (r as Extract<HashReply, { op: 'digested' }>).digests;
  }

  /** Closes are gathered and sent together, after the current turn of the event loop. */
  close(key: number): void {
    this.broken.delete(key);
    this.openKeys.delete(key);
    this.maybeRetire();
    if (this.unannounced.delete(key) || this.dead) return;
    if (this.closing.length === 0) {
      setImmediate(() => {
        const keys = this.closing;
        this.closing = [];
        if (!this.dead) this.post({ op: 'close', keys });
      });
    }
    this.closing.push(key);
  }

  /** The open request of a key, taken the first time the key is used. */
  private opening(key: number): OpenHashers | undefined {
    const open = this.unannounced.get(key);
    this.unannounced.delete(key);
    return open;
  }

  private free(): number {
    return RING_BYTES - (this.written - Number(Atomics.load(this.views.consumed, 0)));
  }

  private async updateWhenRoom(key: number, chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.byteLength; at += PIECE) {
      const piece = chunk.subarray(at, at + PIECE);
      while (this.free() < piece.byteLength) {
        if (this.dead) throw this.dead;
        await this.roomMade(piece.byteLength);
      }
      this.put(key, piece);
    }
  }

  /** Waits for the worker to say it freed room (it is asked to, through the shared flag). */
  private roomMade(needed: number): Promise<void> {
    hashRingWaits.inc();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      Atomics.store(this.views.waiting, 0, 1);
      this.worker.ref();
      // The worker may have made the room between the check and the flag (and then not seen the
      // flag): look again now that it is set.
      if (this.free() >= needed) this.wake();
    });
  }

  private put(key: number, chunk: Uint8Array): void {
    const at = this.written % RING_BYTES;
    const first = Math.min(chunk.byteLength, RING_BYTES - at);
    this.ring.set(chunk.subarray(0, first), at);
    if (first < chunk.byteLength) this.ring.set(chunk.subarray(first), 0);
    this.post({ op: 'update', key, open: this.opening(key), start: this.written, length: chunk.byteLength });
    this.written += chunk.byteLength;
  }

  private ask(key: number, make: (id: number) => HashRequest): Promise<HashReply> {
    if (this.dead) return Promise.reject(this.dead);
    const broken = this.broken.get(key);
    if (broken) return Promise.reject(new Error(`hashing failed earlier: ${broken}`));
    const id = this.nextId++;
    // Keep the process alive while an answer is awaited (the worker is unref'd otherwise).
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post(make(id));
    });
  }

  private onReply(m: HashReply): void {
    if (m.op === 'room') return this.wake();
    if (m.op === 'failed' && m.id === undefined) {
      if (m.key !== undefined) this.broken.set(m.key, m.message);
      return;
    }
    const id = m.id as number;
    const p = this.pending.get(id);
    this.pending.delete(id);
    this.maybeUnref();
    if (m.op === 'failed') p?.reject(new Error(m.message));
    else p?.resolve(m);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    this.maybeUnref();
  }

  private maybeUnref(): void {
    if (this.pending.size === 0 && this.waiters.length === 0) this.worker.unref();
    this.maybeRetire();
  }

  /** No hashers open and nothing asked: the thread goes after idleMs unless an upload opens one. */
  private maybeRetire(): void {
    const busy = () => this.openKeys.size > 0 || this.pending.size > 0 || this.waiters.length > 0;
    if (busy() || this.dead) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      if (busy()) return;
      if (thread === this) thread = undefined;
      this.dead = new Error('the hashing thread was idle and has stopped');
      void this.worker.terminate();
    }, idleMs).unref();
  }

  private post(m: HashRequest): void {
    this.worker.postMessage(m);
  }
}

/**
 * The worker's code as one plain JavaScript bundle: a thread with tsx's loader in it costs about
 * 24 MB more memory. `npm run build` writes it beside the server bundle (bin/bundle.js); when that
 * file is missing or older than the worker's sources (running from source, in tests), esbuild makes
 * it in memory. (esbuild's async API: its sync API would keep a thread of its own alive, some 20 MB
 * more; and imported only then, as the server has no other use for it.)
 */
const WORKER_SOURCES = ['hash-worker.ts', 'hash-protocol.ts'].map((f) =>
  path.join(PACKAGE_ROOT, 'server', 'hashing', f),
);
const PREBUILT_WORKER = path.join(PACKAGE_ROOT, 'dist', 'hash-worker.cjs');

function prebuiltWorker(): string | undefined {
  try {
    const built = fs.statSync(PREBUILT_WORKER).mtimeMs;
    // An installed package ships no sources (bin/bundle.js INSTALLED): the prebuilt worker is all there is.
    if (WORKER_SOURCES.some((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > built)) return undefined;
    return fs.readFileSync(PREBUILT_WORKER, 'utf8');
  } catch {
    return undefined;
  }
}

let bundled: Promise<string> | undefined;
function workerSource(): Promise<string> {
  bundled ??= Promise.resolve(prebuiltWorker()).then(
    async (prebuilt) =>
      prebuilt ??
      (await import('esbuild'))
        .build({
          entryPoints: [WORKER_SOURCES[0]!],
          bundle: true,
          platform: 'node',
          format: 'cjs',
          target: 'node20',
          write: false,
          logLevel: 'silent',
        })
        .then((r) => r.outputFiles[0]!.text),
  );
  return bundled;
}

/**
 * Reads (or, running from source, builds) the thread's code without starting it: a server does this
 * at start, so that its first upload needing the thread does not wait for esbuild.
 */
export async function prepareHashThread(): Promise<void> {
  await workerSource();
}

let thread: HashThread | undefined;

/** The process's hashing thread (a new one if the last one died). */
export async function hashThread(): Promise<HashThread> {
  const source = await workerSource();
  thread ??= new HashThread(source);
  return thread;
}

export type { HashThread };
