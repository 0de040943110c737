// The nginx upload module's resumable mode (its upload-protocol.md): each segment of a file is a POST
// of raw bytes with `Content-Disposition: attachment; filename="…"`, `X-Content-Range` (or
// `Content-Range`): `bytes a-b/total`, and `Session-ID` (or `X-Session-ID`). "Server acknowledges
// reception of each segment with … 201 Created whenever … not all segments of the file were
// received", with "a Range header containing enumeration of all byte ranges … received" and
// "identical list of ranges in response body". The segment that completes the file posts the form
// and relays the app's answer. "The order of transmission of a segment is not defined": segments may
// come in any order and again; a segment already received is answered with the ranges as they are.
//
// Bytes at the front of the file (from the end of the received prefix) go through the store's
// digesting append, hashed as they arrive; a segment further on is written in place and hashed from
// disk when the prefix reaches it. Segments of one session are handled one at a time ("it is
// prohibited to send 2 or more requests with overlapping ranges within one session": serialising
// them makes that harmless).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type express from 'express';
import { Upload } from '@tus/utils';
import type { Config } from '../../config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { principalOf } from '../../auth/principal.ts';
import { onBodyIdle } from '../../network-timeout.ts';
import type { Log } from '../../../core/logger.ts';
import type { DigestFileStore } from '../digest-store.ts';
import { uploadOwnerOf } from '../upload-owner.ts';
import { nonNegativeInteger } from '../tus-headers.ts';
import type { MultipartCompletion, ReceivedFile } from './completion.ts';
import { COMPLETION_HEADER } from '../../../core/wire.ts';
import { HookAnswer, type MultipartHooks } from './multipart-hooks.ts';
import type { SessionRecord, SessionStates } from './session-state.ts';

type Range = [start: number, end: number];

interface Session {
  sessionId: string;
  uploadId: string;
  total: number;
  /** Received byte ranges, inclusive ends, sorted and merged. */
  ranges: Range[];
  name: string;
  contentType: string;
  owner: string;
  /** Segments run one after another. */
  tail: Promise<unknown>;
  /** When the session last moved (sessions idle past the store's expiry are forgotten with their upload). */
  touched: number;
}

const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const CONTENT_RANGE = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/;

export const isResumable = (req: express.Request): boolean =>
  !/^multipart\//i.test(req.get('content-type') ?? '') &&
  ['session-id', 'x-session-id', 'x-content-range', 'content-disposition'].some((h) => req.get(h) !== undefined);

export function formatRanges(ranges: Range[], total: number): string {
  return `${ranges.map(([a, b]) => `${a}-${b}`).join(',')}/${total}`;
}

export function addRange(ranges: Range[], [a, b]: Range): Range[] {
  const all = [...ranges, [a, b] as Range].sort((x, y) => x[0] - y[0]);
  const out: Range[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** The end (exclusive) of the prefix received from byte 0. */
const prefixEnd = (ranges: Range[]) => (ranges[0]?.[0] === 0 ? ranges[0][1] + 1 : 0);
const covered = (ranges: Range[], [a, b]: Range) => ranges.some(([x, y]) => x <= a && b <= y);

/** filename="…" (or filename*=UTF-8''…) of an attachment disposition. */
export function attachmentName(header: string | undefined): string | undefined {
  if (!header || !/^\s*attachment\s*[;,]/i.test(header)) return undefined;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim());
    } catch {
      return undefined;
    }
  }
  const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(header);
  if (quoted) return quoted[1]!.replace(/\\(.)/g, '$1');
  return /filename\s*=\s*([^;\s]+)/i.exec(header)?.[1];
}

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

/** Counts what passes; stops taking more than `limit` bytes. */
async function* counted(source: AsyncIterable<Buffer>, limit: number, seen: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    seen.bytes += chunk.length;
    if (seen.bytes > limit) throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, 'the body is longer than its range');
    yield chunk;
  }
}

export class ResumableSessions {
  private readonly sessions = new Map<string, Session>();

  /**
   * Sessions live in memory and each holds a file: capped, so Session-IDs cannot be made up without
   * end. With `states`, each is also kept beside its upload and outlives a restart (session-state.ts).
   */
  constructor(
    readonly max = 1000,
    private readonly states?: SessionStates,
  ) {}

  /** The sessions of the last run (SessionStates.load), open again. */
  restore(records: SessionRecord[]): void {
    for (const r of records) this.sessions.set(`${r.owner}\n${r.sessionId}`, { ...r, tail: Promise.resolve() });
  }

  /** Whether an open session writes this upload (its file may be full length with gaps: not finished). */
  holds(uploadId: string): boolean {
    for (const s of this.sessions.values()) if (s.uploadId === uploadId) return true;
    return false;
  }

  /** Writes the session's state (after its bytes: a crash loses only the claim). */
  async persist(s: Session): Promise<void> {
    const { sessionId, owner, uploadId, total, ranges, name, contentType, touched } = s;
    await this.states?.save({ sessionId, owner, uploadId, total, ranges, name, contentType, touched });
  }

  /** The session is over (completed, refused, swept): forgotten, with its state. */
  async forget(key: string, s: Session): Promise<void> {
    if (this.sessions.get(key) === s) this.sessions.delete(key);
    await this.states?.remove(s.uploadId);
  }

  get full(): boolean {
    return this.sessions.size >= this.max;
  }

  /**
   * Whether this owner may open another session: with authentication, one caller holds at most a
   * tenth of the cap, so one token cannot fill it for everyone. (Anonymous callers share it.)
   */
  ownerFull(owner: string): boolean {
    if (!owner) return false;
    const share = Math.max(1, Math.floor(this.max / 10));
    let held = 0;
    for (const s of this.sessions.values()) if (s.owner === owner && ++held >= share) return true;
    return false;
  }

  get(key: string): Session | undefined {
    return this.sessions.get(key);
  }

  set(key: string, session: Session): void {
    this.sessions.set(key, session);
  }

  delete(key: string): void {
    this.sessions.delete(key);
  }

  /**
   * Sessions idle past the period are forgotten with their partial file: segments written out of
   * order can make the file as long as its declared size, which the store's expiry would take for a
   * finished upload and keep.
   */
  sweep(periodMs: number, remove: (uploadId: string) => Promise<void>): void {
    const now = Date.now();
    for (const [key, s] of this.sessions) {
      if (now - s.touched <= periodMs) continue;
      this.sessions.delete(key);
      void s.tail.then(() => remove(s.uploadId)).then(() => this.states?.remove(s.uploadId)).catch(() => undefined);
    }
  }

  get size(): number {
    return this.sessions.size;
  }
}

export interface ResumableDeps {
  config: Config;
  store: DigestFileStore;
  completion: MultipartCompletion;
  sessions: ResumableSessions;
  hooks?: MultipartHooks;
  log: Log;
}

export function resumableHandler(deps: ResumableDeps): express.RequestHandler {
  const { config, store, sessions, log } = deps;
  return async (req, res, next) => {
    try {
      const sessionId = req.get('session-id') ?? req.get('x-session-id');
      const rangeText = req.get('x-content-range') ?? req.get('content-range');
      const name = attachmentName(req.get('content-disposition'));
      const m = rangeText ? CONTENT_RANGE.exec(rangeText.trim()) : null;
      if (!sessionId || !SESSION_ID.test(sessionId) || !m || name === undefined) throw new TuspassError(ERRORS.ERR_RESUMABLE_HEADERS);
      const [a, b, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (!(a <= b && b < total)) throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `bytes ${a}-${b}/${total}`);
      const length = b - a + 1;
      const contentLength = nonNegativeInteger(req.get('content-length'));
      if (contentLength !== undefined && contentLength !== length) throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `Content-Length ${contentLength} for ${length} bytes`);
      const limit = maxSizeFor(config, req);
      if (total > limit) throw maxSizeError(config, req, total);
      const owner = principalOf(req)?.sub ?? '';
      // A session belongs to whoever started it: another caller's Session-ID is another session.
      const key = `${owner}\n${sessionId}`;
      sessions.sweep(config.expireAfterMs > 0 ? config.expireAfterMs : 7 * 24 * 3_600_000, (id) => store.remove(id));
      let session = sessions.get(key);
      if (session && session.total !== total) throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `the session's total is ${session.total}`);
      if (!session) {
        if (sessions.full || sessions.ownerFull(owner)) throw Object.assign(new TuspassError(ERRORS.ERR_RESUMABLE_SESSIONS_FULL), { headers: { 'Retry-After': '60' } });
        const contentType = req.get('content-type') || 'application/octet-stream';
        const upload = new Upload({ id: crypto.randomBytes(16).toString('hex'), size: total, offset: 0, metadata: { filename: name, filetype: contentType, fieldname: 'file1' }, creation_date: new Date().toISOString() });
        // pre-create once per session, before its first byte is stored: it may refuse or rename.
        if (deps.hooks) {
          const chosen = await deps.hooks.preCreate(deps.hooks.http(req), upload);
          upload.id = chosen.id;
          upload.metadata = chosen.metadata;
        }
        const uploadId = upload.id;
        // Admitted whole (free space, the owner's limits) by the store's creation.
        store.announceOwner(uploadId, uploadOwnerOf(req, config.behindProxy));
        await store.create(upload);
        deps.hooks?.created(req, upload);
        session = { sessionId, uploadId, total, ranges: [], name, contentType, owner, tail: Promise.resolve(), touched: Date.now() };
        sessions.set(key, session);
        await persist(session);
      }
      const s = session;
      const run = s.tail.then(() => segment(s, [a, b], req));
      s.tail = run.catch(() => undefined);
      const done = await run;
      if (!done) {
        const ranges = formatRanges(s.ranges, s.total);
        res.status(201).set('Range', ranges).type('text/plain').send(`${ranges}\n`);
        return;
      }
      await sessions.forget(key, s);
      const digests = await store.digests(s.uploadId, s.total);
      await store.completionHandled(s.uploadId).catch(() => undefined);
      log(`resumable: session ${sessionId.slice(0, 64)} complete: upload ${s.uploadId}, ${s.total} bytes, md5 ${digests.md5}`, { event: 'upload.finished', upload_id: s.uploadId });
      const files: ReceivedFile[] = [{ id: s.uploadId, field: 'file1', name: s.name, contentType: s.contentType, digests, owner: s.owner }];
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
      const answer = await deps.completion.complete(files, []);
      if (hooks && http) {
        if (answer.headers[COMPLETION_HEADER] === 'rejected') hooks.terminated(http, files);
        else hooks.finished(http, files);
      }
      res.status(answer.status).set(answer.headers).send(answer.body);
    } catch (e) {
      res.set('Connection', 'close');
      if (e instanceof HookAnswer) return void res.status(e.status).set(e.headers).send(e.body);
      next(e);
    }
  };

  /** A state that cannot be written is logged, not the client's failure: only a restart would miss it. */
  async function persist(s: Session): Promise<void> {
    await sessions.persist(s).catch((e: unknown) => log(`resumable: the state of upload ${s.uploadId} could not be written: ${(e as Error).message}`));
  }

  /** Writes one segment; true when it completed the file. */
  async function segment(s: Session, range: Range, req: express.Request): Promise<boolean> {
    s.touched = Date.now();
    const [a, b] = range;
    const length = b - a + 1;
    // Received already (a repeat): the bytes are not written again, the answer is the ranges.
    if (covered(s.ranges, range)) {
      req.resume();
      // Complete already (a restart came between the last bytes and the form): this repeat finishes it.
      return prefixEnd(s.ranges) === s.total;
    }
    const front = prefixEnd(s.ranges);
    const seen = { bytes: 0 };
    let cut = false;
    const noLongerIdle = onBodyIdle(req, () => {
      cut = true;
      req.destroy();
    });
    try {
      if (a <= front) {
        // At the front: through the digesting append (the part before the front is hashed already).
        const result = await store.append(skip(counted(req, length, seen), front - a), s.uploadId, front, { limit: b + 1 - front, size: s.total });
        if (result.offset !== b + 1 || seen.bytes !== length) throw new TuspassError(cut ? ERRORS.ERR_MULTIPART_TIMEOUT : ERRORS.ERR_RESUMABLE_RANGE, `${seen.bytes} of ${length} bytes arrived`);
      } else {
        // Further on: in place; hashed from disk once the prefix reaches it.
        await pipeline(counted(req, length, seen), fs.createWriteStream(store.filePath(s.uploadId), { flags: 'r+', start: a }));
        if (seen.bytes !== length) throw new TuspassError(cut ? ERRORS.ERR_MULTIPART_TIMEOUT : ERRORS.ERR_RESUMABLE_RANGE, `${seen.bytes} of ${length} bytes arrived`);
      }
    } finally {
      noLongerIdle();
    }
    s.ranges = addRange(s.ranges, range);
    s.touched = Date.now();
    const complete = prefixEnd(s.ranges) === s.total;
    if (!complete) await persist(s);
    return complete;
  }
}
