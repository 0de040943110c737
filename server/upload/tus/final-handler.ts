// POST /files/ with `Upload-Concat: final;<url> <url> ...` — the concatenation extension's final
// upload, built from finished partial uploads in the order given. The parts are read once to write
// the final file, and hashed during that same read, so the final's md5 costs no extra pass.
//
// While the final is built, the partials' locks are held (in id order, so two finals sharing a
// partial cannot deadlock): a DELETE or HEAD of a partial waits for the build instead of pulling a
// file from under it. A partial may be listed once only — the protocol does not forbid repeats, but
// with them one small partial made a final of any size (300 × 100 KB = 30 MB from one POST); without
// them, and with KEEP_PARTIALS off (the default), every byte of a final was sent by a client once.
import crypto from 'node:crypto';
import type express from 'express';
import { Upload, type Locker } from '@tus/utils';
import type { Config } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { uploadsCreated, uploadsFinished } from '../../ops/metrics.ts';
import type { ConcatenatingStore } from '../../backends/store/upload-store.ts';
import { sendTus } from '../../http/tus-response.ts';
import { httpRequestOf, type UploadEvents } from '../../pipeline/upload-events.ts';
import { withLock } from '../../backends/locker/upload-lock.ts';
import type { UploadAccess } from '../../pipeline/upload-access.ts';
import { requestMetadata, TUS_PATH } from '../../http/tus-headers.ts';
import { idFromUrl, uploadUrl } from './upload-url.ts';
import { errorText } from '../../../core/logger.ts';
import { ownerKey, uploadOwnerOf } from '../../auth/upload-owner.ts';
import { answerError } from '../../http/error-answer.ts';

export interface FinalDeps {
  config: Config;
  /** Either store: the final is built by its concatenate(). */
  store: ConcatenatingStore;
  locker: Locker;
  events: UploadEvents;
  /** The access step (upload-access.ts): each partial is accessed, as by a request naming it. */
  access: UploadAccess;
  /** Keep the partial uploads once the final one is built (default: remove them). */
  keepPartials: boolean;
  log: (line: string) => void;
}

/** The partial upload ids the header lists: at most MAX_CONCAT_PARTS, each once, all ours. */
function listedParts(header: string, maxParts: number): string[] {
  const urls = header.trim().slice('final;'.length).trim().split(/\s+/).filter(Boolean);
  if (!urls.length) throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, 'no partial upload URLs');
  if (urls.length > maxParts)
    throw new TuspassError(ERRORS.ERR_CONCAT_TOO_MANY_PARTS, `${urls.length} listed, at most ${maxParts}`);
  const parts: string[] = [];
  for (const url of urls) {
    const id = idFromUrl(url);
    if (!id) throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, `${url} is not an upload URL of this server`);
    if (parts.includes(id)) throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, `${url} is listed more than once`);
    parts.push(id);
  }
  return parts;
}

/** Checks one partial upload and returns its size. */
async function partialSize(store: ConcatenatingStore, id: string): Promise<number> {
  const url = `${TUS_PATH}/${id}`;
  const upload = await store.getUpload(id).catch(() => {
    throw new TuspassError(ERRORS.ERR_CONCAT_PARTIAL_NOT_FOUND, url);
  });
  if ((await store.concatOf(id))?.kind !== 'partial') throw new TuspassError(ERRORS.ERR_CONCAT_NOT_PARTIAL, url);
  // Concatenating unfinished partials would need the concatenation-unfinished extension.
  if (upload.size === undefined || upload.offset !== upload.size)
    throw new TuspassError(
      ERRORS.ERR_CONCAT_UNFINISHED,
      `${url} is at ${upload.offset} of ${upload.size ?? 'unknown'}`,
    );
  return upload.size;
}

/**
 * Checks the partial uploads and returns their total size. Read all at once (on S3 each is a request
 * of its own: one after the other, 100 partials took seconds); the refusal is the first partial's in
 * the order listed, as when they were read in turn.
 */
async function sizeOf(store: ConcatenatingStore, parts: readonly string[]): Promise<number> {
  let size = 0;
  for (const checked of await Promise.allSettled(parts.map((id) => partialSize(store, id)))) {
    if (checked.status === 'rejected') throw checked.reason;
    size += checked.value;
  }
  return size;
}

/**
 * Runs `work` holding the locks of all `ids`, taken in sorted order; none is asked to let go early.
 * Each id once: a lock taken twice would wait on itself (a final a hook named after a partial gone meanwhile).
 */
async function withLocks<T>(locker: Locker, ids: readonly string[], work: () => Promise<T>): Promise<T> {
  const [first, ...rest] = [...new Set(ids)].sort();
  if (first === undefined) return work();
  return withLock(
    locker,
    first,
    () => {},
    () => withLocks(locker, rest, work),
  );
}

export function finalHandler(deps: FinalDeps): express.RequestHandler {
  const { config, store, events } = deps;
  return async (req, res) => {
    let building: string | undefined;
    try {
      // "The Client MUST NOT include the Upload-Length header in the final upload creation."
      if (req.get('upload-length') !== undefined || req.get('upload-defer-length') !== undefined) {
        throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, 'a final upload takes its length from its partial uploads');
      }
      const parts = listedParts(req.get('upload-concat')!, config.maxConcatParts);
      // Each partial passes the access step, in the order listed: naming someone else's partial is
      // answered as naming none (its existence is not revealed), and the pre-access hook may refuse
      // it. Building the final reads the partials; with KEEP_PARTIALS off it removes them too.
      const mode = deps.keepPartials ? 'read' : 'write';
      for (const id of parts) {
        await deps.access.check(req, id, {
          mode,
          hidden: () => new TuspassError(ERRORS.ERR_CONCAT_PARTIAL_NOT_FOUND, `${TUS_PATH}/${id}`),
        });
      }
      // Checked before any hook runs or lock is taken, for a quick answer; again under the locks.
      const size = await sizeOf(store, parts);
      if (size > maxSizeFor(config, req)) throw maxSizeError(config, req, size);
      const http = httpRequestOf(req);
      const concat = { kind: 'final' as const, parts };
      // The whole final counts against the free space and its owner's share, as a creation of its
      // size would: answered here before any hook runs, decided by store.create.
      const owner = uploadOwnerOf(req, config.behindProxy);
      await store.space.check(size, ownerKey(owner));
      const proposed = new Upload({
        id: crypto.randomBytes(16).toString('hex'),
        size,
        offset: 0,
        metadata: requestMetadata(req.get('upload-metadata')),
      });
      const chosen = await events.preCreate(http, proposed, concat);
      const upload = new Upload({
        id: chosen.id,
        size,
        offset: 0,
        metadata: chosen.metadata,
        creation_date: new Date().toISOString(),
      });
      await withLocks(deps.locker, [...parts, upload.id], async () => {
        // A partial removed (or changed) while the hook ran is found here, before a byte is written.
        if ((await sizeOf(store, parts)) !== size)
          throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, 'the partial uploads changed');
        building = upload.id;
        await store.create(upload, { owner, concat });
        try {
          upload.offset = await store.concatenate(upload.id, parts, size);
        } catch (e) {
          // A half-built final upload could never be completed (PATCH on a final is refused): gone, and out
          // of its owner's count even when the store then fails to remove it (UploadStore.remove).
          await store
            .remove(upload.id)
            .catch((failure: unknown) =>
              deps.log(`concat: removing the unfinished final ${upload.id}: ${errorText(failure)}`),
            );
          throw e;
        }
      });
      events.created(req, upload, concat);
      // Created and finished in one request: both of tusd's counters.
      uploadsCreated.inc();
      uploadsFinished.inc();
      const { handled, ...answer } = await events.finish(http, upload, concat);
      // The partials go only once the final upload's completion was handled: if a hook failed, the
      // client can still build the final upload again from them.
      // Under their locks, as every removal: a DELETE of a partial meanwhile finds it whole or gone, never
      // its info without its file (which reads as an expired upload, 410).
      if (handled && !deps.keepPartials) {
        await withLocks(deps.locker, parts, async () => {
          for (const part of parts)
            await store
              .remove(part)
              .catch((e: unknown) => deps.log(`concat: removing partial ${part}: ${errorText(e)}`));
        });
      }
      // "The Server MUST acknowledge a successful upload creation with the 201 Created status" —
      // kept when the completion service answered 2xx; its refusals are relayed.
      const status = answer.status_code && answer.status_code >= 300 ? answer.status_code : 201;
      sendTus(
        res,
        status,
        { ...answer.headers, ...(status === 201 ? { Location: uploadUrl(req, upload.id) } : {}) },
        answer.body,
      );
    } catch (e) {
      // Every refusal or failure is logged, with its cause (a client's answer never carries it).
      const why = e instanceof TuspassError ? e.message : errorText(e);
      deps.log(
        `concat: final upload${building ? ` ${building}` : ''} \
failed: ${e instanceof TuspassError ? `${e.code}: ` : ''}${why}`,
      );
      answerError(req, res, e, { log: deps.log, form: 'tus' });
    }
  };
}
