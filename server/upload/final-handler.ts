// POST /files/ with `Upload-Concat: final;<url> <url> ...` — the concatenation extension's final
// upload, built from finished partial uploads in the order given. The parts are read once to write
// the final file, and hashed during that same read, so the final's md5 costs no extra pass.
import crypto from 'node:crypto';
import type express from 'express';
import { Metadata, Upload, type Locker } from '@tus/utils';
import type { Config } from '../config.ts';
import { ERRORS, TuspassError } from '../errors.ts';
import type { DigestFileStore } from './digest-store.ts';
import { sendTus, sendTusError } from './tus-response.ts';
import { httpRequestOf, type UploadEvents } from './upload-events.ts';
import { withLock } from './upload-lock.ts';
import { idFromUrl, uploadUrl } from './upload-url.ts';

export interface FinalDeps {
  config: Config;
  store: DigestFileStore;
  locker: Locker;
  events: UploadEvents;
  /** Keep the partial uploads once the final one is built (default: remove them). */
  keepPartials: boolean;
  log: (line: string) => void;
}

/** Checks the partial uploads named by the header and returns their ids and total size. */
async function partsOf(store: DigestFileStore, header: string): Promise<{ parts: string[]; size: number }> {
  const urls = header.trim().slice('final;'.length).trim().split(/\s+/).filter(Boolean);
  if (!urls.length) throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, 'no partial upload URLs');
  const parts: string[] = [];
  let size = 0;
  for (const url of urls) {
    const id = idFromUrl(url);
    if (!id) throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, `${url} is not an upload URL of this server`);
    const upload = await store.getUpload(id).catch(() => {
      throw new TuspassError(ERRORS.ERR_CONCAT_PARTIAL_NOT_FOUND, url);
    });
    if ((await store.concatOf(id))?.kind !== 'partial') throw new TuspassError(ERRORS.ERR_CONCAT_NOT_PARTIAL, url);
    // Concatenating unfinished partials would need the concatenation-unfinished extension.
    if (upload.size === undefined || upload.offset !== upload.size) throw new TuspassError(ERRORS.ERR_CONCAT_UNFINISHED, `${url} is at ${upload.offset} of ${upload.size ?? 'unknown'}`);
    parts.push(id);
    size += upload.size;
  }
  return { parts, size };
}

function metadataOf(header: string | undefined): Record<string, string | null> | undefined {
  if (!header) return undefined;
  try {
    return Metadata.parse(header);
  } catch {
    throw new TuspassError(ERRORS.ERR_METADATA_INVALID);
  }
}

export function finalHandler(deps: FinalDeps): express.RequestHandler {
  const { config, store, events } = deps;
  return async (req, res) => {
    try {
      // "The Client MUST NOT include the Upload-Length header in the final upload creation."
      if (req.get('upload-length') !== undefined || req.get('upload-defer-length') !== undefined) {
        throw new TuspassError(ERRORS.ERR_CONCAT_INVALID, 'a final upload takes its length from its partial uploads');
      }
      const { parts, size } = await partsOf(store, req.get('upload-concat')!);
      if (config.maxSize && size > config.maxSize) throw new TuspassError(ERRORS.ERR_MAX_SIZE_EXCEEDED, `${size} > ${config.maxSize}`);
      const http = httpRequestOf(req);
      const concat = { kind: 'final' as const, parts };
      const proposed = new Upload({ id: crypto.randomBytes(16).toString('hex'), size, offset: 0, metadata: metadataOf(req.get('upload-metadata')) });
      const chosen = await events.preCreate(http, proposed, concat);
      const upload = new Upload({ id: chosen.id, size, offset: 0, metadata: chosen.metadata, creation_date: new Date().toISOString() });

      try {
        await withLock(deps.locker, upload.id, () => {}, async () => {
          store.announceConcat(upload.id, { kind: 'final', parts });
          await store.create(upload);
          upload.offset = await store.concatenate(upload.id, parts, size);
        });
      } catch (e) {
        // A half-built final upload could never be completed (PATCH on a final is refused): gone.
        await store.remove(upload.id).catch(() => undefined);
        throw e;
      }
      events.notify('post-create', http, events.hookUpload(upload, concat));
      const { handled, ...answer } = await events.finish(http, upload, concat);
      // The partials go only once the final upload's completion was handled: if a hook failed, the
      // client can still build the final upload again from them.
      if (handled && !deps.keepPartials) {
        for (const part of parts) await store.remove(part).catch((e: Error) => deps.log(`concat: removing partial ${part}: ${e.message}`));
      }
      // "The Server MUST acknowledge a successful upload creation with the 201 Created status" —
      // kept when the completion service answered 2xx; its refusals are relayed.
      const status = answer.status_code && answer.status_code >= 300 ? answer.status_code : 201;
      sendTus(res, status, { ...answer.headers, ...(status === 201 ? { Location: uploadUrl(req, upload.id) } : {}) }, answer.body);
    } catch (e) {
      sendTusError(res, req, e, deps.log);
    }
  };
}
