// Messages between the main thread (hash-thread.ts) and the hashing thread (hash-worker.ts).
// Bytes travel through a shared ring buffer, not in messages (no allocation per chunk): an update
// names where in the ring its bytes are. The control block is shared too: `consumed` counts the
// bytes the worker has hashed (the main thread may overwrite them), `waiting` is 1 while the main
// thread waits for room (the worker then says when it made some).
import type { DigestName } from '../../core/wire.ts';

/** The hashers there are: one per digest name on the wire (core/wire.ts). */
export type HasherName = DigestName;

export const RING_BYTES = 1 << 20;
export const CONTROL_BYTES = 16;

export function controlViews(control: SharedArrayBuffer): { consumed: BigInt64Array; waiting: Int32Array } {
  return { consumed: new BigInt64Array(control, 0, 1), waiting: new Int32Array(control, 8, 1) };
}

export interface RingInit {
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

/** Hashers to open under a key; sent along with the key's first request (a message less per upload). */
export interface OpenHashers {
  names: HasherName[];
  states?: Partial<Record<HasherName, Uint8Array>>;
}

export type HashRequest =
  /** `length` bytes written at ring position `start` (a running byte count; wraps modulo RING_BYTES). */
  | { op: 'update'; key: number; open?: OpenHashers; start: number; length: number }
  /**
   * `length` bytes at `start` of a buffer the main thread shares and leaves unchanged until a later
   * request of the key is answered (no copy into the ring: the S3 store's part buffers).
   */
  | { op: 'update-shared'; key: number; open?: OpenHashers; buffer: SharedArrayBuffer; start: number; length: number }
  | { op: 'save'; key: number; open?: OpenHashers; id: number }
  | { op: 'digest'; key: number; open?: OpenHashers; id: number }
  /** Keys done with, gathered into one message. */
  | { op: 'close'; keys: number[] };

export type HashReply =
  /** Room was freed in the ring while the main thread waited. */
  | { op: 'room' }
  | { op: 'saved'; id: number; states: Partial<Record<HasherName, Uint8Array>> }
  | { op: 'digested'; id: number; digests: Partial<Record<HasherName, string>> }
  /** A request failed: the request's id when it awaits an answer, the key it was about. */
  | { op: 'failed'; key?: number; id?: number; message: string };
