// POST /upload/ with multipart/form-data, as the nginx upload module takes it: parsed as a stream by
// busboy, each file part a new upload of the store (of deferred length, declared at the part's end),
// written straight in through the tus path's digesting append (md5 always, sha1/crc32 per DIGESTS,
// size) with back-pressure — busboy pauses the socket while a part's stream is not read, and the
// store reads it only as fast as the disk (or the bucket) takes it. No temporary copy: the file in
// the store (or the object in the bucket, S3_BUCKET) is the file the form names. A request that fails
// in any way keeps nothing: every upload it created is removed (an S3 multipart upload aborted).
// Each carries a mark in its info until the body has arrived whole and the pre-finish hooks let the
// form go (StoredInfo.resumable 'multipart'): complete in the store, it is still no finished upload,
// so a process stopped mid-request announces none of it, and the next start removes it.
import crypto from 'node:crypto';
import type express from 'express';
import busboy from 'busboy';
import { Upload, type Locker } from '@tus/utils';
import type { Config } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { onBodyIdle } from '../../http/network-timeout.ts';
import { bytesReceived, uploadsFinished } from '../../ops/metrics.ts';
import type { Log } from '../../../core/logger.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { withLock } from '../../backends/locker/upload-lock.ts';
import { uploadOwnerOf, type UploadOwner } from '../../auth/upload-owner.ts';
import type { MultipartCompletion, ReceivedFile } from './completion.ts';
import type { MultipartHooks } from './multipart-hooks.ts';
import { requestIdOf } from '../../http/request-id.ts';
import { COMPLETION_HEADER } from '../../../core/wire.ts';

export interface MultipartDeps {
  config: Config;
  store: UploadStore;
  /** The tus routes' locker: each part is written under its upload's lock, as a PATCH is. */
  locker: Locker;
  completion: MultipartCompletion;
  hooks?: MultipartHooks;
  log: Log;
}

const FIELD_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Nobody else may take a part's lock while its request writes it: the upload is marked, refused to others. */
const noRelease = () => {};
/** Non-file fields are a handful of short values; more is no upload form. */
const LIMITS = { fields: 256, fieldSize: 64 * 1024, files: 64, parts: 320, headerPairs: 32 };

/** The request's hooks: pre-create before a file is created (may refuse, rename), post-create after. */
export interface FileHooks {
  hooks: MultipartHooks;
  req: express.Request;
  http: ReturnType<MultipartHooks['http']>;
}

/** Writes one file part into a new upload of the store; returns it hashed, or throws (its file then removed by the
 * caller). */
export async function storeFile(
  store: UploadStore,
  locker: Locker,
  source: AsyncIterable<Buffer>,
  meta: { name: string; contentType: string; field: string },
  creator: UploadOwner,
  limit: number,
  created: Upload[],
  hooks?: FileHooks,
): Promise<{ file: ReceivedFile; exceeded: boolean }> {
  const owner = creator.sub ?? '';
  const upload = new Upload({
    id: crypto.randomBytes(16).toString('hex'),
    offset: 0,
    size: undefined,
    metadata: { filename: meta.name, filetype: meta.contentType, fieldname: meta.field },
    creation_date: new Date().toISOString(),
  });
  if (hooks) {
    // Before a byte of the part is read: a refusal leaves it unread (busboy holds the socket).
    const chosen = await hooks.hooks.preCreate(hooks.http, upload);
    upload.id = chosen.id;
    upload.metadata = chosen.metadata;
  }
  const id = upload.id;
  // Listed for the request's cleanup only once it is this request's: a creation refused because a
  // hook gave it the id of another upload (store/new-upload.ts) must not remove that upload.
  await store.create(upload, { owner: creator, resumable: 'multipart' });
  created.push(upload);
  hooks?.hooks.created(hooks.req, upload);
  // Under the upload's lock, as a tus PATCH writes: with several instances (REDIS_URL) every write
  // proves it holds it (redis-locker.ts WriteFence).
  const written = await withLock(locker, id, noRelease, async () => {
    const result = await store.append(source, id, 0, { limit });
    bytesReceived.inc(result.offset);
    if (result.exceeded) return undefined;
    // The length is known now: the upload is complete, as a finished tus upload is.
    await store.declareUploadLength(id, result.offset);
    return result.offset;
  });
  if (written === undefined) return { file: undefined as never, exceeded: true };
  const digests = await store.digests(id, written);
  uploadsFinished.inc();
  return {
    file: { id, field: meta.field, name: meta.name, contentType: meta.contentType, digests, owner },
    exceeded: false,
  };
}

/** Whether a browser posted the form: django-nginx-upload's page sends terminal=no; browsers accept text/html first. */
export function isBrowserPost(req: express.Request, fields: Array<[string, string]>): boolean {
  if (fields.some(([k, v]) => k === 'terminal' && v === 'no')) return true;
  return req.accepts(['application/json', 'text/html']) === 'text/html' && !!req.get('accept')?.includes('text/html');
}

export function multipartHandler(deps: MultipartDeps): express.RequestHandler {
  const { config, store, locker, log } = deps;
  return async (req, res, next) => {
    const created: Upload[] = [];
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: LIMITS, preservePath: false, defParamCharset: 'utf8' });
    } catch (e) {
      // "Multipart: Boundary not found", "Unsupported content type".
      return next(new TuspassError(ERRORS.ERR_MULTIPART_INVALID, (e as Error).message));
    }
    const owner = uploadOwnerOf(req, config.behindProxy);
    const limit = maxSizeFor(config, req);
    const hooks = deps.hooks;
    const http = hooks?.http(req);
    const fileHooks = hooks && http ? { hooks, req, http } : undefined;
    /** Removes every file the request made; those announced by post-create get post-terminate. */
    const removeAll = async () => {
      for (const upload of created) await store.remove(upload.id).catch(() => undefined);
      if (hooks && http)
        hooks.terminated(
          http,
          created.map((upload) => ({ id: upload.id, upload })),
        );
    };
    const fields: Array<[string, string]> = [];
    const files: ReceivedFile[] = [];
    const used = new Set<string>();
    let failure: unknown;
    /** Bytes of the body read so far. */
    let received = 0;
    let chain = Promise.resolve();
    const fail = (e: unknown) => {
      failure ??= e;
      // The file being written gets the error and ends; the socket stops being read.
      req.unpipe(bb);
      bb.destroy(e instanceof Error ? e : new Error(String(e)));
    };
    const malformed = (what: string) => fail(new TuspassError(ERRORS.ERR_MULTIPART_INVALID, what));
    const noLongerIdle = onBodyIdle(req, () => fail(new TuspassError(ERRORS.ERR_MULTIPART_TIMEOUT)));

    // Every stream of the request has its error handled where it is made — the request and busboy
    // here, each part's stream in 'file' — never later, when its turn comes: busboy ends a cut body
    // by destroying the part being read, and an 'error' with no listener ends the process.
    req.on('data', (chunk: Buffer) => (received += chunk.length));
    // Where the body stopped is the one thing the answer's error handler cannot know: it goes in
    // the error (there is no one to answer; the handler logs the line).
    const clientGone = () =>
      fail(
        new TuspassError(
          ERRORS.ERR_MULTIPART_INVALID,
          `the client closed the connection at byte ${received} of the body`,
        ),
      );
    req.on('aborted', clientGone);
    req.on('error', clientGone);
    // Gone while the gates before this handler ran (their events went unheard).
    if (req.destroyed) clientGone();
    const parsed = new Promise<void>((resolve) => {
      bb.on('close', resolve);
      bb.on('error', (e: Error) => {
        // busboy's own words say what is wrong: "Unexpected end of form", "Malformed part header"
        // (an error of ours it was destroyed with is the failure already).
        malformed(e.message);
        resolve();
      });
    });

    bb.on('field', (name: string | undefined, value, info) => {
      // A part with no name has nowhere to go in the form.
      if (name === undefined) return;
      if (info.nameTruncated || info.valueTruncated) return malformed(`field ${name.slice(0, 64)} too long`);
      fields.push([name, value]);
    });
    bb.on('file', (name: string | undefined, stream, info) => {
      // Its error is either busboy's, which busboy emits too (handled below), or ours: a part its
      // reader left (the store refused it) is destroyed with an AbortError. The listener is what
      // matters: a part still waiting for its turn has no reader yet.
      stream.on('error', () => undefined);
      // A file input left empty: browsers send a part with an empty filename and no bytes.
      if (!info.filename) return void stream.resume();
      const named = name !== undefined && FIELD_NAME.test(name);
      let field = named ? name : `file${files.length + created.length + 1}`;
      // Every file its own prefix: a repeated field name (<input multiple>) gets _2, _3...
      for (let n = 2; used.has(field); n++) field = `${named ? name : 'file'}_${n}`;
      used.add(field);
      const meta = { name: info.filename, contentType: info.mimeType || 'application/octet-stream', field };
      chain = chain.then(async () => {
        if (failure) return void stream.resume();
        try {
          const { file, exceeded } = await storeFile(store, locker, stream, meta, owner, limit, created, fileHooks);
          if (exceeded) return fail(maxSizeError(config, req, limit + 1));
          files.push(file);
        } catch (e) {
          // The part's own error is the body's (busboy's words); any other is the store's or a hook's.
          if (e === stream.errored) malformed((e as Error).message);
          else fail(e);
        }
      });
    });
    bb.on('partsLimit', () => malformed('too many parts'));
    bb.on('filesLimit', () => malformed('too many files'));
    bb.on('fieldsLimit', () => malformed('too many fields'));

    if (!failure) req.pipe(bb);
    await parsed;
    await chain;
    noLongerIdle();
    try {
      if (failure) throw failure;
      if (files.length === 0) throw new TuspassError(ERRORS.ERR_MULTIPART_NO_FILE);
    } catch (e) {
      await removeAll();
      // The rest of the body is not read: the connection cannot be reused.
      res.set('Connection', 'close');
      return next(e);
    }
    let answer;
    try {
      // The user's pre-finish hooks, before the form is posted: a refusal keeps nothing.
      if (hooks && http) await hooks.preFinish(http, files);
      // Finished uploads from now on, before the form goes: a stop while it is posted leaves them
      // announced again at the next start (the service drops a repeat by upload id), never removed
      // as a dead request's parts while the app may hold a record of them.
      for (const file of files) await store.settleSegments(file.id);
      // A failure here removes the request's files (removeAll below): nothing is kept.
      answer = await deps.completion.complete(files, fields, {
        requestId: requestIdOf(req),
        whenUnqueued: 'nothing of the request is kept; send it again once there is space',
      });
    } catch (e) {
      await removeAll();
      return next(e);
    }
    if (hooks && http) {
      // A cleanup status removed the files (completion.ts); delivered or queued, they are finished.
      if (answer.headers[COMPLETION_HEADER] === 'rejected') hooks.terminated(http, files);
      else hooks.finished(http, files);
    }
    log(
      `multipart: ${files.length} file(s) received: ` +
        `${files.map((f) => `${f.id} (${f.digests.size} bytes, md5 ${f.digests.md5})`).join(', ')}`,
      { event: 'upload.finished', upload_id: files[0]!.id },
    );
    // The built-in service answers as django-nginx-upload's Django view: a browser goes on to the table.
    if (answer.recordedHere && isBrowserPost(req, fields)) return void res.redirect(303, '/#completed');
    res.status(answer.status_code).set(answer.headers).send(answer.body);
  };
}
