// One append to an S3 upload: the body is cut into parts while it arrives, each part sent with
// UploadPart as soon as it is full, several at once (S3_PARTS_IN_FLIGHT), the body read on only while
// fewer are in flight. Memory of one append: at most (in flight + 1) part buffers, the one filling
// and those being sent — 5 × 8 MiB = 40 MiB on the defaults (taken from and given back to a bounded
// pool kept between appends: part-buffers.ts).
//
// The bytes hash as they arrive (the hashing thread). The record (s3-record.ts) is written each time
// the parts sent in order move on, with the digest state snapshotted at that part's end, so a kill -9
// loses at most the parts in flight and the filling one, and the next request continues the hash
// where the record says. Bytes left after the last full part go to a tail object until the next
// append (S3 wants parts of at least 5 MiB but the last), unless the upload is complete: then they
// are its last part and the multipart upload is completed.
import type { S3Client } from '@aws-sdk/client-s3';
import { sdk } from './s3-sdk.ts';
import { ERRORS, TuspassError } from '../../../../core/errors.ts';
import type { DigestName } from '../../../../core/wire.ts';
import { BodyInterrupted, isConnectionGone } from '../../../http/dropped-requests.ts';
import { DigestState } from '../../../hashing/digest-state.ts';
import type { AppendOptions, AppendResult } from '../append.ts';
import type { WriteFence } from '../../locker/redis-locker.ts';
import { givePartBuffer, takePartBuffer } from './part-buffers.ts';
import { capacity, partSize } from './part-size.ts';
import { recordOffset, writeRecord, type S3Keys, type S3Record, type SentPart } from './s3-record.ts';

/**
 * The record is written at most this often while parts land (and always at the end of an append).
 * Each write is a PutObject, which costs radosgw and its OSD about as much CPU as a part of several
 * MiB (measured: 5.9 s per GiB for the raw multipart upload, 7.8 with a record after every 8 MiB
 * part); a kill -9 loses at most the parts of the last second, which the client sends again.
 */
const RECORD_EVERY_MS = 1000;

/** Bytes of a part buffer hashed at a time. */
const HASH_BATCH = 1 << 20;

export interface S3AppendDeps {
  s3: S3Client;
  bucket: string;
  keys: S3Keys;
  algorithms: readonly DigestName[];
  /** S3_PART_SIZE, S3_EQUAL_PARTS, S3_PARTS_IN_FLIGHT. */
  minPartSize: number;
  equalParts: boolean;
  partsInFlight: number;
  /**
   * With several instances (REDIS_URL): every part and every record written proves the upload's lock
   * first (redis-locker.ts), so an instance that paused past its lease sends nothing more — a part it
   * sent late under a number the next holder used would make the upload impossible to complete.
   */
  fence?: WriteFence;
}

/** A failure of S3's (not the client's): answered 503, the bytes in the record kept. */
export const objectStoreFailure = (id: string, e: unknown): TuspassError =>
  e instanceof TuspassError
    ? e
    : new TuspassError(
        ERRORS.ERR_OBJECT_STORE_UNAVAILABLE,
        undefined,
        `upload ${id}: ${(e as Error)?.message ?? String(e)}`,
      );

/** The running digests the record ends at: its snapshot, or fresh at offset 0. */
async function digestsOf(deps: S3AppendDeps, id: string, record: S3Record): Promise<DigestState> {
  const at = recordOffset(record);
  if (!record.digest) {
    if (at !== 0)
      throw new TuspassError(ERRORS.ERR_INTERNAL, undefined, `upload ${id}: no digest state for ${at} bytes`);
    return DigestState.fresh(deps.algorithms);
  }
  const state = await DigestState.fromSnapshot(record.digest, deps.algorithms);
  if (!state || state.offset !== at) {
    state?.release();
    throw new TuspassError(
      ERRORS.ERR_INTERNAL,
      undefined,
      `upload ${id}: the digest state does not match its bytes (DIGESTS changed?)`,
    );
  }
  return state;
}

async function readTail(deps: S3AppendDeps, tail: { key: string; size: number }, into: Buffer): Promise<void> {
  const got = await deps.s3.send(new sdk.GetObjectCommand({ Bucket: deps.bucket, Key: tail.key }));
  let at = 0;
  for await (const chunk of got.Body as AsyncIterable<Uint8Array>) {
    into.set(chunk, at);
    at += chunk.byteLength;
  }
  if (at !== tail.size) throw new Error(`tail ${tail.key} has ${at} bytes, the record says ${tail.size}`);
}

/**
 * The multipart upload, completed from the parts sent (an empty upload is put whole instead: S3 completes no upload of
 * no part).
 */
export async function completeObject(deps: S3AppendDeps, id: string, record: S3Record): Promise<void> {
  const Key = deps.keys.object(id);
  if (record.parts.length === 0) {
    await deps.s3.send(new sdk.AbortMultipartUploadCommand({ Bucket: deps.bucket, Key, UploadId: record.uploadId }));
    await deps.s3.send(
      new sdk.PutObjectCommand({ Bucket: deps.bucket, Key, Body: Buffer.alloc(0), ...objectHeaders(record) }),
    );
  } else {
    const Parts = record.parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag }));
    await deps.s3.send(
      new sdk.CompleteMultipartUploadCommand({
        Bucket: deps.bucket,
        Key,
        UploadId: record.uploadId,
        MultipartUpload: { Parts },
      }),
    );
  }
  record.completed = true;
  delete record.uploadId;
}

/** Content-Type and Content-Disposition of the object, from the upload's metadata (filetype, filename). */
export function objectHeaders(record: Pick<S3Record, 'info'>): { ContentType?: string; ContentDisposition?: string } {
  const meta = record.info.metadata ?? {};
  const type = meta.filetype ?? meta.type;
  const name = meta.filename ?? meta.name;
  return {
    ...(type && /^[\w.+-]+\/[\w.+-]+(;.*)?$/.test(type) && { ContentType: type }),
    ...(name && { ContentDisposition: `attachment; filename*=UTF-8''${encodeURIComponent(name)}` }),
  };
}

/**
 * Appends `source` at the record's offset. The record passed in is the one in the bucket; the one
 * returned is the one written after. With a checksum nothing is written to the record unless the body
 * matches ("MUST NOT append the chunk"): parts sent for a refused body are never listed in it, and
 * their numbers are sent again by the next append.
 */
export async function appendParts(
  deps: S3AppendDeps,
  id: string,
  record: S3Record,
  source: AsyncIterable<Buffer>,
  options: AppendOptions,
): Promise<AppendResult> {
  const { s3, bucket, keys } = deps;
  const Key = keys.object(id);
  const start = recordOffset(record);
  const size = record.info.size;
  const sentBefore = record.parts.reduce((n, p) => n + p.size, 0);
  const chosen = partSize(
    deps.minPartSize,
    size,
    sentBefore,
    record.parts.length,
    deps.equalParts,
    record.parts.length || record.tail ? record.partSize : undefined,
  );
  const fence = deps.fence;
  let version = fence ? await fence.begin(id) : 0;
  let fencing: Promise<void> = Promise.resolve();
  /** Still the lock's holder before writing up to `end` (the proofs one after another: each moves the version on). */
  const prove = (end: number): Promise<void> => {
    if (!fence) return Promise.resolve();
    fencing = fencing.then(async () => {
      version = await fence.advance(id, version, end);
    });
    return fencing;
  };
  const state = await digestsOf(deps, id, record);
  const checksum = options.checksum;
  const oldTail = record.tail;
  // Never past the length (a body longer than the upload is cut there, `exceeded`); a length not known
  // yet: no further than the parts left can hold at this size.
  const limit = Math.min(
    options.limit ?? Number.MAX_SAFE_INTEGER,
    size === undefined ? capacity(chosen, sentBefore, record.parts.length) - start : size - start,
  );
  // The memory of one append stays within (S3_PARTS_IN_FLIGHT + 1) × S3_PART_SIZE where it can: parts
  // made larger by a long Upload-Length go fewer at a time (at least one in flight, two buffers).
  const inFlight = Math.max(
    1,
    Math.min(deps.partsInFlight, Math.floor(((deps.partsInFlight + 1) * deps.minPartSize) / chosen) - 1),
  );

  /** The record as the parts sent in order make it; written as it moves on (without a checksum). */
  const parts: SentPart[] = [...record.parts];
  let filling = takePartBuffer(chosen);
  let filled = 0;
  if (oldTail) {
    await readTail(deps, oldTail, filling);
    filled = oldTail.size;
  }

  interface Flight {
    part: SentPart;
    digest: ReturnType<DigestState['snapshot']>;
    done: Promise<void>;
    settled: boolean;
  }
  const flights: Flight[] = [];
  let checkpoint: Promise<void> = Promise.resolve();
  /** When the record was last written; the snapshot of parts landed since, with the timer that writes it. */
  let recordedAt = -Infinity;
  let due: Flight['digest'] | undefined;
  let dueTimer: NodeJS.Timeout | undefined;
  /** The parts are over: the append's own last record says the rest. */
  let closing = false;
  let tailGone = false;

  /**
   * Parts sent in order: added to the record, which is written (`now`, or RECORD_EVERY_MS after the
   * last write). The writes are chained in the order the parts landed (a later record never
   * overwritten by an earlier one).
   */
  const advance = (now = false): Promise<void> => {
    while (flights[0]?.settled) {
      const f = flights.shift()!;
      parts.push(f.part);
      due = f.digest;
    }
    if (!due || checksum || (closing && !now)) return checkpoint;
    const wait = recordedAt + RECORD_EVERY_MS - Date.now();
    if (!now && wait > 0) {
      dueTimer ??= setTimeout(() => {
        dueTimer = undefined;
        if (!closing) void advance(true).catch(() => undefined);
      }, wait);
      return checkpoint;
    }
    clearTimeout(dueTimer);
    dueTimer = undefined;
    recordedAt = Date.now();
    const sent = [...parts];
    const at = due;
    due = undefined;
    checkpoint = checkpoint.then(async () => {
      const snapshot: S3Record = {
        ...record,
        partSize: chosen,
        parts: sent,
        tail: undefined,
        digest: await at,
        writtenAt: Date.now(),
      };
      await prove(recordOffset(snapshot));
      await writeRecord(s3, bucket, keys.record(id), snapshot);
      options.onProgress?.(recordOffset(snapshot));
      if (oldTail && !tailGone) {
        tailGone = true;
        await s3.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: oldTail.key })).catch(() => undefined);
      }
    });
    return checkpoint;
  };

  const send = (buffer: Buffer, length: number) => {
    const PartNumber = parts.length + flights.length + 1;
    // Asked for after the part's last bytes went to the hashing thread: answered once they are hashed.
    const flight: Flight = {
      part: { PartNumber, ETag: '', size: length },
      digest: state.snapshot(),
      settled: false,
      done: Promise.resolve(),
    };
    flight.digest.catch(() => undefined);
    const upload = prove(start + read).then(() =>
      s3.send(
        new sdk.UploadPartCommand({
          Bucket: bucket,
          Key,
          UploadId: record.uploadId,
          PartNumber,
          Body: buffer.subarray(0, length),
          ContentLength: length,
        }),
      ),
    );
    // Its slot (and buffer) is free once S3 has the part and the hashing thread has hashed it.
    flight.done = Promise.all([upload, flight.digest]).then(async ([answer]) => {
      flight.part.ETag = answer.ETag!;
      flight.settled = true;
      givePartBuffer(buffer);
      // The record is written behind (chained, awaited at the end): the part's slot is free now.
      void advance().catch(() => undefined);
    });
    flight.done.catch(() => undefined);
    flights.push(flight);
  };

  /** Waits until fewer than S3_PARTS_IN_FLIGHT parts are in flight (the body is not read meanwhile). */
  const room = async () => {
    while (flights.filter((f) => !f.settled).length >= inFlight)
      await Promise.race(flights.filter((f) => !f.settled).map((f) => f.done));
  };

  /**
   * The part buffer is hashed in batches of HASH_BATCH as it fills (one message to the hashing thread
   * per batch, not per socket chunk), where it is: part buffers are shared with the hashing thread
   * (part-buffers.ts), and a buffer is written again only after a snapshot taken behind its bytes is
   * answered. The body is read on meanwhile: a hashing thread slowed by a busy machine holds up
   * reading only through the parts in flight, whose slots wait for their bytes to be hashed.
   */
  let hashed = filled;
  const hash = () => {
    if (filled > hashed) state.updateShared(filling.subarray(hashed, filled));
    hashed = filled;
  };

  let read = 0;
  let exceeded = false;
  let sourceFailure: unknown;
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      let chunk = next.value;
      if (read + chunk.byteLength > limit) {
        chunk = chunk.subarray(0, limit - read);
        exceeded = true;
      }
      read += chunk.byteLength;
      checksum?.running.update(chunk);
      for (let at = 0; at < chunk.byteLength; ) {
        const n = Math.min(chosen - filled, chunk.byteLength - at);
        chunk.copy(filling, filled, at, at + n);
        filled += n;
        at += n;
        if (filled - hashed >= HASH_BATCH || filled === chosen) hash();
        if (filled === chosen) {
          await room();
          send(filling, filled);
          filling = takePartBuffer(chosen);
          filled = 0;
          hashed = 0;
        }
      }
      if (exceeded) break;
    }
  } catch (e) {
    sourceFailure = e;
    await Promise.resolve(it.return?.()).catch(() => undefined);
  }
  hash();
  try {
    // Every part in flight lands (or one fails: the record stays at the last part sent in order).
    const results = await Promise.allSettled(flights.map((f) => f.done));
    closing = true;
    clearTimeout(dueTimer);
    const rejected = results.find((r) => r.status === 'rejected');
    // After a failed part the record keeps what landed before it; otherwise the record written below
    // says it all.
    await advance(rejected !== undefined);
    await checkpoint;
    if (rejected) throw objectStoreFailure(id, (rejected as PromiseRejectedResult).reason);

    const offset = start + read;
    if (checksum) {
      // An interrupted body cannot be verified, so it is dropped like a mismatching one.
      const ok = sourceFailure === undefined && !exceeded && checksum.running.matches(checksum.expected);
      if (!ok) {
        if (sourceFailure !== undefined && isConnectionGone(sourceFailure))
          throw new BodyInterrupted(id, read, 0, start, sourceFailure);
        if (sourceFailure !== undefined) throw sourceFailure;
        if (!exceeded) throw new TuspassError(ERRORS.ERR_CHECKSUM_MISMATCH);
        return { offset: start, exceeded };
      }
    }
    const next: S3Record = { ...record, partSize: chosen, parts: [...parts], tail: undefined, writtenAt: Date.now() };
    const complete = size !== undefined && offset === size;
    if (filled > 0 && complete) {
      const PartNumber = parts.length + 1;
      await prove(offset);
      const answer = await s3.send(
        new sdk.UploadPartCommand({
          Bucket: bucket,
          Key,
          UploadId: record.uploadId,
          PartNumber,
          Body: filling.subarray(0, filled),
          ContentLength: filled,
        }),
      );
      next.parts.push({ PartNumber, ETag: answer.ETag!, size: filled });
    } else if (filled > 0) {
      const tailKey = keys.tail(id, offset);
      await s3.send(
        new sdk.PutObjectCommand({
          Bucket: bucket,
          Key: tailKey,
          Body: filling.subarray(0, filled),
          ContentLength: filled,
        }),
      );
      next.tail = { key: tailKey, size: filled };
    }
    next.digest = await state.snapshot();
    // Sent and hashed: nothing reads the last buffer any more.
    givePartBuffer(filling);
    await prove(offset);
    if (complete) await completeObject(deps, id, next);
    await writeRecord(s3, bucket, keys.record(id), next);
    if (complete) await fence?.forget(id);
    if (oldTail && !tailGone && next.tail?.key !== oldTail.key)
      await s3.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: oldTail.key })).catch(() => undefined);
    options.onProgress?.(offset);
    if (sourceFailure !== undefined) {
      if (isConnectionGone(sourceFailure)) throw new BodyInterrupted(id, read, read, offset, sourceFailure);
      throw sourceFailure;
    }
    return { offset, exceeded };
  } catch (e) {
    throw objectStoreFailure(id, e);
  } finally {
    closing = true;
    clearTimeout(dueTimer);
    state.release();
  }
}
