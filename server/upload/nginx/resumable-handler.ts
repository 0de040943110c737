// The nginx upload module's resumable mode (its upload-protocol.md): each segment of a file is a POST
// of raw bytes with `Content-Disposition: attachment; filename="…"`, `X-Content-Range` (or
// `Content-Range`): `bytes a-b/total`, and `Session-ID` (or `X-Session-ID`). "Server acknowledges
// reception of each segment with … 201 Created whenever … not all segments of the file were
// received", with "a Range header containing enumeration of all byte ranges … received" and
// "identical list of ranges in response body". The segment that completes the file posts the form
// and relays the app's answer. "The order of transmission of a segment is not defined": segments may
// come in any order and again; a segment already received is answered with the ranges as they are.
//
// One session per (owner, Session-ID), whichever instance a segment reaches: each segment runs under
// the session's lock (the locker of the tus routes: memory, or Redis across instances), reads the
// session's state (session-state.ts), opens the session when there is none — so the first segments
// of a new session sent at once join one session and one file — writes its bytes, and records its
// range before the lock goes. "It is prohibited to send 2 or more requests with overlapping ranges
// within one session": serialising a session's segments makes that harmless.
//
// Bytes at the front of the file (from the end of the received prefix) go through the store's
// digesting append, hashed as they arrive; a segment further on is written in place and hashed from
// disk when the prefix reaches it. The file is finished only when the recorded ranges cover it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type express from 'express';
import { Upload, type Locker } from '@tus/utils';
import type { Config } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { COMPLETION_HEADER } from '../../../core/wire.ts';
import { errorText, type Log } from '../../../core/logger.ts';
import { BodyInterrupted, noteDropped } from '../../http/dropped-requests.ts';
import { bytesReceived, uploadsFinished } from '../../ops/metrics.ts';
import { onBodyIdle, type BodyCut } from '../../http/network-timeout.ts';
import type { DigestFileStore } from '../../backends/store/digest-store.ts';
import { fullDiskAnswer } from '../../backends/store/full-disk.ts';
import { stoppable } from '../../http/stoppable-body.ts';
import type { UploadAccess } from '../../pipeline/upload-access.ts';
import { withLock } from '../../backends/locker/upload-lock.ts';
import { ownerKey } from '../../auth/upload-owner.ts';
import { addRange, bytesIn, covered, coversAll, formatRanges, prefixEnd } from './byte-ranges.ts';
import type { MultipartCompletion, ReceivedFile } from './completion.ts';
import type { MultipartHooks } from './multipart-hooks.ts';
import { requestIdOf } from '../../http/request-id.ts';
import type { ResumableSessions } from './resumable-sessions.ts';
import { parseSegment, type Segment } from './segment-headers.ts';
import { sessionKey, type SessionRecord } from './session-state.ts';

/** Sessions idle this long are removed when uploads never expire (EXPIRE_AFTER 0): the cap must free up. */
const IDLE_WITHOUT_EXPIRY_MS = 7 * 24 * 3_600_000;

/** Skips the first `n` bytes of a body (the part of a segment already in the hashed prefix). */
async function* skip(source: AsyncIterable<Buffer>, n: number): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (n >= chunk.length) {
      n -= chunk.length;
      continue;
    }
    yield n > 0 ? chunk.subarray(n) : chunk;
    n = 0;
  }
}

/**
 * Counts what passes; stops taking more than `limit` bytes. The request is read through its
 * iterator's next() only: leaving a `for await` over it (a throw, a consumer that stops) would
 * destroy the request, and with it the answer — a body longer than its range got none.
 */
async function* counted(source: AsyncIterable<Buffer>, limit: number, seen: { bytes: number }): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  for (let next = await it.next(); !next.done; next = await it.next()) {
    seen.bytes += next.value.length;
    if (seen.bytes > limit) throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, 'the body is longer than its range');
    yield next.value;
  }
}

/** What became of a segment's body, for the line of a segment whose client went (dropped-requests.ts). */
interface BodyProgress {
  uploadId?: string;
  received: number;
  /** Bytes of it recorded in the session. */
  kept: number;
  /** The end of the run the session has received from byte 0. */
  front: number;
}

type Outcome = { kind: 'recorded'; record: SessionRecord } | { kind: 'complete'; record: SessionRecord };

/** Aborted when the client goes before its answer. */
function clientGone(res: express.Response): AbortSignal {
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}

const lockIdOf = (key: string) => `resumable-${key}`;
const noRelease = () => {};

export interface ResumableDeps {
  config: Config;
  store: DigestFileStore;
  /** The tus routes' locker (MemoryLocker, or the Redis locker with REDIS_URL). */
  locker: Locker;
  completion: MultipartCompletion;
  sessions: ResumableSessions;
  hooks?: MultipartHooks;
  /** The access step (upload-access.ts): a segment of an open session writes an existing upload. */
  access: UploadAccess;
  log: Log;
}

export function resumableHandler(deps: ResumableDeps): express.RequestHandler {
  const { config, store, locker, sessions, log } = deps;
  const states = sessions.states;
  const idlePeriod = config.expireAfterMs > 0 ? config.expireAfterMs : IDLE_WITHOUT_EXPIRY_MS;

  return async (req, res, next) => {
    const gone = clientGone(res);
    const progress: BodyProgress = { received: 0, kept: 0, front: 0 };
    try {
      const seg = parseSegment(req, config);
      sessions.sweep(idlePeriod, expire);
      const outcome = await sessions.serial(seg.key, async () => {
        gone.throwIfAborted();
        return withLock(locker, lockIdOf(seg.key), noRelease, () => step(seg, req, gone, progress), gone);
      });
      if (outcome.kind === 'recorded') {
        const ranges = formatRanges(outcome.record.ranges, outcome.record.total);
        res.status(201).set('Range', ranges).type('text/plain').send(`${ranges}\n`);
        return;
      }
      await finish(outcome.record, req, res);
    } catch (e) {
      // No one to answer: one line and a count (dropped-requests.ts), with what the session kept.
      const p = progress;
      if (
        gone.aborted &&
        noteDropped(
          req,
          res,
          p.uploadId ? new BodyInterrupted(p.uploadId, p.received, p.kept, p.front, e) : e,
          log,
          true,
        )
      )
        return;
      res.set('Connection', 'close');
      next(e);
    }
  };

  /** One segment, under the session's lock: the session as recorded, opened if there is none; the bytes; the range. */
  async function step(seg: Segment, req: express.Request, gone: AbortSignal, progress: BodyProgress): Promise<Outcome> {
    let record = await states.read(seg.key);
    // A state whose upload is gone (removed, expired) or finished is over: the Session-ID starts anew.
    if (record && (await store.segmentsOf(record.uploadId)) !== 'open') {
      await states.remove(record);
      sessions.forget(seg.key);
      record = undefined;
    }
    if (record && record.total !== seg.total)
      throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `the session's total is ${record.total}`);
    // A segment of an open session writes its upload (or reads its ranges, for a repeat): the access
    // step first, before a byte is read. The session is the caller's own (keyed by its owner).
    if (record)
      await deps.access.check(req, record.uploadId, {
        mode: 'write',
        segmented: true,
        hidden: () => new TuspassError(ERRORS.ERR_NOT_FOUND),
      });
    record ??= await open(seg, req);
    sessions.note(seg.key, record);
    progress.uploadId = record.uploadId;
    const r = record;
    // The upload's own lock too: with REDIS_URL every write into it is fenced by that lock (store/append.ts).
    return withLock(locker, r.uploadId, noRelease, () => write(seg, r, req, progress), gone);
  }

  /** A new session: its place in the cap, pre-create, the whole file's space reserved, the upload, its state. */
  async function open(seg: Segment, req: express.Request): Promise<SessionRecord> {
    const holder = ownerKey(seg.creator);
    await sessions.reserve(seg.key, holder);
    try {
      const upload = new Upload({
        id: crypto.randomBytes(16).toString('hex'),
        size: seg.total,
        offset: 0,
        metadata: { filename: seg.name, filetype: seg.contentType, fieldname: 'file1' },
        creation_date: new Date().toISOString(),
      });
      // pre-create once per session, before its first byte is stored: it may refuse or rename.
      if (deps.hooks) {
        const chosen = await deps.hooks.preCreate(deps.hooks.http(req), upload);
        upload.id = chosen.id;
        upload.metadata = chosen.metadata;
      }
      // The session's total is known at its first segment: admitted whole by the store's creation
      // (free space, the owner's limits), as a tus creation's Upload-Length is.
      await store.create(upload, { owner: seg.creator, resumable: true });
      deps.hooks?.created(req, upload);
      const record: SessionRecord = {
        sessionId: seg.sessionId,
        owner: seg.owner,
        holder,
        uploadId: upload.id,
        total: seg.total,
        ranges: [],
        name: seg.name,
        contentType: seg.contentType,
        touched: Date.now(),
      };
      try {
        await save(record);
      } catch (e) {
        // A session nobody can find again: its upload goes with it.
        await store.remove(upload.id).catch(() => undefined);
        throw e;
      }
      return record;
    } catch (e) {
      sessions.forget(seg.key);
      throw e;
    }
  }

  /** The session's state, written while its lock is still this request's (with REDIS_URL: proved first). */
  async function save(record: SessionRecord): Promise<void> {
    await store.fence?.begin(lockIdOf(sessionKey(record)));
    await states.save(record).catch((e: unknown) => {
      throw fullDiskAnswer(store.space, e, `saving the state of resumable upload ${record.uploadId}`);
    });
  }

  /** Writes one segment and records its range; complete when the ranges cover the file. */
  async function write(
    seg: Segment,
    record: SessionRecord,
    req: express.Request,
    progress: BodyProgress,
  ): Promise<Outcome> {
    const [a, b] = seg.range;
    const length = b - a + 1;
    // Received already (a repeat): the bytes are not written again, the answer is the ranges.
    if (covered(record.ranges, seg.range)) {
      req.resume();
      return coversAll(record.ranges, record.total) ? complete(seg, record) : { kind: 'recorded', record };
    }
    const before = bytesIn(record.ranges);
    const front = prefixEnd(record.ranges);
    const seen = { bytes: 0 };
    // A body that stops arriving (NETWORK_TIMEOUT) or the server stopping: the body ends here, what
    // reached the front is kept and recorded, and the segment is answered (as a tus PATCH is).
    const body = stoppable(req);
    let cut: BodyCut | undefined;
    const noLongerIdle = onBodyIdle(req, (why) => {
      cut = why;
      body.stop();
    });
    let failure: unknown;
    try {
      if (a <= front) {
        // At the front: through the digesting append (the part before the front is hashed already).
        // Even from a segment cut short, the bytes that reached the disk at the front are the
        // client's: recorded (the digest state catches up from the file).
        let reached = front;
        try {
          const result = await store.append(
            skip(counted(body.source, length, seen), front - a),
            record.uploadId,
            front,
            { limit: b + 1 - front, size: record.total, onProgress: (at) => (reached = at) },
          );
          reached = result.offset;
          if (result.offset !== b + 1 || seen.bytes !== length)
            throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `${seen.bytes} of ${length} bytes arrived`);
        } finally {
          if (reached > front) record.ranges = addRange(record.ranges, [front, reached - 1]);
        }
      } else {
        // Further on: in place; hashed from disk once the prefix reaches it.
        await pipeline(
          counted(body.source, length, seen),
          fs.createWriteStream(store.filePath(record.uploadId), { flags: 'r+', start: a }),
        );
        if (seen.bytes !== length)
          throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `${seen.bytes} of ${length} bytes arrived`);
        record.ranges = addRange(record.ranges, seg.range);
      }
    } catch (e) {
      failure = fullDiskAnswer(store.space, e, `writing resumable upload ${record.uploadId}`);
    } finally {
      noLongerIdle();
      progress.received = seen.bytes;
    }
    const received = bytesIn(record.ranges);
    progress.kept = received - before;
    progress.front = prefixEnd(record.ranges);
    // Cut short: 408 (503 when the server is stopping) with the ranges received so far, in the
    // Range header and the message, as a 201 lists them; the client resends the rest.
    if (cut && failure !== undefined) {
      const ranges = formatRanges(record.ranges, record.total);
      failure = Object.assign(
        new TuspassError(
          cut === 'shutdown' ? ERRORS.ERR_SHUTTING_DOWN : ERRORS.ERR_BODY_TIMEOUT,
          `ranges received: ${ranges}`,
        ),
        { headers: { Range: ranges } },
      );
    }
    if (received === before) {
      if (failure !== undefined) throw failure;
      return { kind: 'recorded', record };
    }
    bytesReceived.inc(received - before);
    store.space.segments(record.uploadId, received);
    record.touched = Date.now();
    // Recorded (covering the file or not) before anything else: once covered, a stop from here on
    // leaves a session the next start settles and announces.
    await save(record);
    // Covered, the file is complete whatever became of the rest of this body (bytes past its range,
    // its connection gone after the last byte needed): refused instead, the session would answer
    // every later segment as a repeat and its file would wait for a restart to be announced.
    if (coversAll(record.ranges, record.total)) return complete(seg, record);
    if (failure !== undefined) throw failure;
    return { kind: 'recorded', record };
  }

  /** The session's ranges cover its file: settled (a finished upload like any other), its state gone. */
  async function complete(seg: Segment, record: SessionRecord): Promise<Outcome> {
    await store.settleSegments(record.uploadId);
    await states.remove(record);
    sessions.forget(seg.key);
    return { kind: 'complete', record };
  }

  /** The file is complete: pre-finish, the form, the app's answer relayed. */
  async function finish(s: SessionRecord, req: express.Request, res: express.Response): Promise<void> {
    const digests = await store.digests(s.uploadId, s.total);
    uploadsFinished.inc();
    log(
      `resumable: session ${s.sessionId.slice(0, 64)} complete: upload ${s.uploadId}, ${s.total} bytes, md5 ` +
        `${digests.md5}`,
      { event: 'upload.finished', upload_id: s.uploadId },
    );
    const files: ReceivedFile[] = [
      { id: s.uploadId, field: 'file1', name: s.name, contentType: s.contentType, digests, owner: s.owner },
    ];
    const hooks = deps.hooks;
    const http = hooks?.http(req);
    try {
      // The user's pre-finish hooks, before the form is posted: a refusal removes the file.
      if (hooks && http) await hooks.preFinish(http, files);
    } catch (e) {
      await store.remove(s.uploadId).catch(() => undefined);
      if (hooks && http) hooks.terminated(http, files);
      throw e;
    }
    // The file is settled (complete above): a failure here leaves it for the next start to announce.
    const answer = await deps.completion.complete(files, [], {
      requestId: requestIdOf(req),
      whenUnqueued: 'the file is kept and announced at the next start',
    });
    if (hooks && http) {
      if (answer.headers[COMPLETION_HEADER] === 'rejected') hooks.terminated(http, files);
      else hooks.finished(http, files);
    }
    res.status(answer.status_code).set(answer.headers).send(answer.body);
  }

  /** A session idle past the period (as this instance saw it): removed with its upload, unless it moved elsewhere
   * since. */
  function expire(key: string): void {
    const work = async () => {
      const r = await states.read(key);
      if (!r) return;
      if (Date.now() - r.touched <= idlePeriod) return sessions.note(key, r);
      if ((await store.segmentsOf(r.uploadId)) === 'open') await store.remove(r.uploadId);
      await states.remove(r);
      log(
        `resumable: session ${r.sessionId.slice(0, 64)} idle for ${Math.round((Date.now() - r.touched) / 1000)} ` +
          `s: upload ${r.uploadId} removed with ${bytesIn(r.ranges)} of ${r.total} bytes received`,
        { event: 'upload.expired', upload_id: r.uploadId },
      );
    };
    sessions
      .serial(key, () => withLock(locker, lockIdOf(key), noRelease, work))
      .catch((e: unknown) => log(`resumable: expiring session ${key}: ${errorText(e)}`, { level: 'warn' }));
  }
}
