// The hashing thread: runs the hash-wasm hashers of every upload being written, so hashing (about
// half of the server's work on a large upload) runs on the second core while the main thread moves
// bytes from the socket to the disk. Messages are handled in order, one upload's updates in the
// order they were written. Speaks the protocol of hash-thread.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { createCRC32, createMD5, createSHA1, type IHasher } from 'hash-wasm';
import {
  controlViews,
  RING_BYTES,
  type HashReply,
  type HashRequest,
  type HasherName,
  type OpenHashers,
  type RingInit,
} from './hash-protocol.ts';

const FACTORIES: Record<HasherName, () => Promise<IHasher>> = {
  md5: createMD5,
  sha1: createSHA1,
  crc32: () => createCRC32(),
};

/** Each hasher is its own WebAssembly instance, costly to start: they are reused. */
const pool: Record<HasherName, IHasher[]> = { md5: [], sha1: [], crc32: [] };
const acquire = async (name: HasherName) => (pool[name].pop() ?? (await FACTORIES[name]())).init();
const release = (name: HasherName, h: IHasher) => {
  if (pool[name].length < 64) pool[name].push(h);
};

const open = new Map<number, Map<HasherName, IHasher>>();
const { ring: ringBuffer, control: controlBuffer } = workerData as RingInit;
const ring = new Uint8Array(ringBuffer);
const { consumed, waiting } = controlViews(controlBuffer);

const port = parentPort!;
const reply = (m: HashReply) => port.postMessage(m);

function hashersOf(key: number): Map<HasherName, IHasher> {
  const h = open.get(key);
  if (!h) throw new Error(`hash thread: no hashers open under key ${key}`);
  return h;
}

async function openHashers(key: number, request: OpenHashers): Promise<void> {
  const hashers = new Map<HasherName, IHasher>();
  for (const name of request.names) {
    const h = await acquire(name);
    const saved = request.states?.[name];
    if (saved) h.load(saved);
    hashers.set(name, h);
  }
  open.set(key, hashers);
}

async function handle(m: HashRequest): Promise<void> {
  if (m.op !== 'close' && m.open) await openHashers(m.key, m.open);
  switch (m.op) {
    case 'update': {
      const hashers = hashersOf(m.key).values();
      const at = m.start % RING_BYTES;
      const first = ring.subarray(at, Math.min(at + m.length, RING_BYTES));
      const rest = ring.subarray(0, m.length - first.byteLength);
      for (const h of hashers) {
        h.update(first);
        if (rest.byteLength) h.update(rest);
      }
      Atomics.store(consumed, 0, BigInt(m.start + m.length));
      if (Atomics.exchange(waiting, 0, 0) === 1) reply({ op: 'room' });
      return;
    }
    case 'update-shared': {
      const bytes = new Uint8Array(m.buffer, m.start, m.length);
      for (const h of hashersOf(m.key).values()) h.update(bytes);
      return;
    }
    case 'save': {
      const states: Partial<Record<HasherName, Uint8Array>> = {};
      for (const [name, h] of hashersOf(m.key)) states[name] = h.save();
      reply({ op: 'saved', id: m.id, states });
      return;
    }
    case 'digest': {
      const digests: Partial<Record<HasherName, string>> = {};
      for (const [name, h] of hashersOf(m.key)) {
        const copy = await acquire(name);
        copy.load(h.save());
        digests[name] = copy.digest('hex');
        release(name, copy);
      }
      reply({ op: 'digested', id: m.id, digests });
      return;
    }
    case 'close': {
      for (const key of m.keys) {
        for (const [name, h] of open.get(key) ?? []) release(name, h);
        open.delete(key);
      }
      return;
    }
  }
}

// Messages are handled strictly one after another: 'open' awaits WebAssembly set-up, and an update
// arriving meanwhile must wait for it.
let chain: Promise<void> = Promise.resolve();
port.on('message', (m: HashRequest) => {
  chain = chain
    .then(() => handle(m))
    .catch((e: Error) =>
      reply({
        op: 'failed',
        key: 'key' in m ? m.key : undefined,
        id: 'id' in m ? m.id : undefined,
        message: e.message,
      }),
    );
});
