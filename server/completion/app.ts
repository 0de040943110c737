// The completion service: receives the signed completion form (docs/completion-form.md), records the
// upload in the catalog and serves the catalog to the page (/api/uploads) with downloads.
import fsp from 'node:fs/promises';
import express from 'express';
import { loopbackHostOnly } from '../auth/loopback.ts';
import { apiScope, authenticate } from '../auth/middleware.ts';
import { mayAccess, principalOf } from '../auth/principal.ts';
import type { Config } from '../config/config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { API_CORS, cors, corsPolicy } from '../http/cors.ts';
import type { RecordJson } from '../../core/record.ts';
import { isObjectLocation, SIGNATURE_HEADER } from '../../core/wire.ts';
import { pathForLog, type Log } from '../../core/logger.ts';
import { requestIds } from '../http/request-id.ts';
import { answerError } from '../http/error-answer.ts';
import type { Catalog, UploadRecord } from '../backends/catalog/catalog.ts';
import { fileUrl, formReceiver, formRecorder, type FormRecorder } from './receive.ts';
import { checkStorePath } from './store-path.ts';
import { openStoreObject, removeStoreObject } from './store-object.ts';
import { sendDownload } from '../http/download.ts';

export interface CompletionAppOptions {
  /** Where error lines go; tests quiet it. Default console.error. */
  log?: Log;
  /**
   * What records a form after its signature, when the process also hands it forms directly (start.ts); made here
   * otherwise.
   */
  record?: FormRecorder;
  /**
   * Removes a recorded upload's file by its tus id (DELETE /api/uploads/:id). In `tuspass start`, the
   * store's own removal; alone, the file and its info and digest state beside it in the store.
   */
  removeUpload?: (uploadId: string, record: UploadRecord) => Promise<void>;
  /**
   * The upload server's access step for the upload a record's file is (`tuspass start`: its owner and
   * the pre-access hook), before the file is downloaded (`read`) or removed (`write`). Throws the
   * error table's errors, or a hook's own answer to relay as written ({ status_code, body, headers }).
   * Alone, the service serves records without it: it runs no hooks.
   */
  access?: (req: express.Request, uploadId: string, mode: 'read' | 'write') => Promise<void>;
}

/** A form is a handful of short fields; pass-through metadata is small too. */
const FORM_LIMIT = '1mb';
const LIST_DEFAULT = 100;
const LIST_MAX = 1000;

/** The public JSON shape of a record (core/record.ts): snake_case, as the page and other apps read it. */
function recordJson(r: UploadRecord, withPath = true): RecordJson {
  return {
    id: r.id,
    upload_id: r.uploadId,
    name: r.name,
    size: r.size,
    md5: r.md5,
    ...(r.sha1 && { sha1: r.sha1 }),
    ...(r.crc32 && { crc32: r.crc32 }),
    content_type: r.contentType,
    // The absolute path in the store is for admins (and a server without authentication) only.
    ...(withPath && { path: r.path }),
    owner: r.owner,
    fields: r.fields,
    created_at: r.createdAt,
    url: fileUrl(r),
  };
}

function queryInt(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value) || Number(value) > max) {
    throw new TuspassError(ERRORS.ERR_QUERY_INVALID, `${name} must be a whole number up to ${max}`);
  }
  return Number(value);
}

/** At download a missing file is a 404 for the record, not the form's 422; the answer names the record, the log its
 * path. */
const gone =
  (r: UploadRecord) =>
  (e: unknown): never => {
    if (e instanceof TuspassError && e.code === ERRORS.ERR_FILE_MISSING.code) throw recordFileGone(r);
    throw e;
  };
const recordFileGone = (r: UploadRecord) => new TuspassError(ERRORS.ERR_RECORD_FILE_GONE, `record ${r.id}`, r.path);

/** What the log gets beyond the answer: the error's log detail, and the stack of an internal error. */
/** The form's body, read whole; the body parser's refusals in the table's words, where they arise. */
function formBody(): express.RequestHandler {
  const raw = express.raw({ type: () => true, limit: FORM_LIMIT });
  return (req, res, next) =>
    raw(req, res, (err?: unknown) => {
      const parser = (err ?? {}) as { type?: string; status?: number; message?: string };
      if (parser.type === 'entity.too.large')
        return next(new TuspassError(ERRORS.ERR_FORM_TOO_LARGE, `limit ${FORM_LIMIT}`));
      if (parser.type && parser.status && parser.status < 500)
        return next(new TuspassError(ERRORS.ERR_FORM_UNREADABLE, parser.message));
      next(err);
    });
}

/**
 * The completion service on its own: the recorded file and what the upload server keeps beside it
 * (<id>.json info, <id>.digest state), when the path is still a file inside the store.
 */
async function removeRecordedFile(storeDir: string, record: UploadRecord, config: Config): Promise<void> {
  if (isObjectLocation(record.path)) return removeStoreObject(config, record.path);
  const found = await checkStorePath(storeDir, record.path).catch((e: unknown) => {
    if (e instanceof TuspassError && e.code === ERRORS.ERR_FILE_MISSING.code) return undefined;
    throw e;
  });
  if (!found) return;
  for (const file of [found.realPath, `${found.realPath}.json`, `${found.realPath}.digest`])
    await fsp.rm(file, { force: true });
}

export function createCompletionApp(
  config: Config,
  catalog: Catalog,
  options: CompletionAppOptions = {},
): express.Express {
  const log = options.log ?? ((line: string) => console.error(line));
  const receive = formReceiver(config, options.record ?? formRecorder(config, catalog));
  const app = express();
  app.disable('x-powered-by');
  // An anonymous completion service serves only requests addressed to this machine (DNS rebinding).
  app.use(loopbackHostOnly(config));
  // A request id per request (kept when the upload server assigned one already); refusals logged.
  app.use(requestIds(log));

  // Raw bytes whatever the Content-Type: the signature covers the body exactly as sent.
  app.post('/complete/', formBody(), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    res.json(await receive(body, req.get(SIGNATURE_HEADER)));
  });

  // Pages on other origins read the API only when CORS_ORIGINS lists them (server/http/cors.ts).
  app.use('/api/uploads', cors(corsPolicy(config.corsOrigins), API_CORS));

  // Bearer tokens (server/auth/): reading needs `read`, removing `upload`; each caller sees their own records, admins
  // all.
  app.use('/api/uploads', authenticate(config, apiScope));
  /** Whether the caller sees everything: an admin, or anyone on a server without authentication. */
  const seesAll = (req: express.Request) => {
    const caller = principalOf(req);
    return !caller || caller.scopes.has('admin');
  };

  app.get('/api/uploads', async (req, res) => {
    const limit = queryInt(req.query.limit, 'limit', LIST_DEFAULT, LIST_MAX);
    const offset = queryInt(req.query.offset, 'offset', 0, Number.MAX_SAFE_INTEGER);
    const all = seesAll(req);
    const owner = all ? undefined : principalOf(req)!.sub;
    res.json((await catalog.list({ limit, offset, owner })).map((r) => recordJson(r, all)));
  });

  /** The record, when the caller may see it; someone else's record is answered as no record (existence not
   * revealed). */
  const findRecord = async (req: express.Request) => {
    const id = String(req.params.id);
    const record = await catalog.get(id);
    if (!record || !mayAccess(principalOf(req), record.owner)) throw new TuspassError(ERRORS.ERR_RECORD_NOT_FOUND, id);
    return record;
  };

  app.get('/api/uploads/:id', async (req, res) => {
    res.json(recordJson(await findRecord(req), seesAll(req)));
  });

  // Finished uploads belong to the catalog: the file and its record go together (tus DELETE refuses them).
  app.delete('/api/uploads/:id', async (req, res) => {
    const record = await findRecord(req);
    await options.access?.(req, record.uploadId, 'write');
    if (options.removeUpload) await options.removeUpload(record.uploadId, record);
    else await removeRecordedFile(config.storeDir, record, config);
    await catalog.remove(record.id);
    res.status(204).end();
  });

  app.get('/api/uploads/:id/file', async (req, res) => {
    const record = await findRecord(req);
    // The record's file is its upload's: read as GET /files/<upload id> reads it, through the same step.
    await options.access?.(req, record.uploadId, 'read');
    const naming = {
      name: record.name || record.uploadId,
      contentType: record.contentType,
      disposition: 'attachment',
    } as const;
    const onStreamError = (err: Error) => log(`completion: GET ${pathForLog(req.originalUrl)}: ${err.message}`);
    // An upload in the S3 store: its object, read by range.
    if (isObjectLocation(record.path)) {
      const object = await openStoreObject(config, record.path).catch(gone(record));
      return sendDownload(req, res, { ...object, ...naming }, onStreamError);
    }
    // Checked again at download: the store may have changed since the form (a file swapped for a symlink).
    const { realPath } = await checkStorePath(config.storeDir, record.path).catch(gone(record));
    const file = await fsp.open(realPath, 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? recordFileGone(record) : e;
    });
    const stat = await file.stat().catch(async (e: unknown) => {
      await file.close();
      throw e;
    });
    // The answer every download gets (server/http/download.ts), GET /files/:id's too; here always an attachment.
    await sendDownload(req, res, { file, size: stat.size, modified: stat.mtime, ...naming }, onStreamError);
  });

  // Unknown paths: 404 here when the service runs alone; mounted in the upload server (tuspass
  // start), they go on to that server's routes and its own last handlers.
  app.use((_req, _res, next) =>
    next((app as { parent?: unknown }).parent ? undefined : new TuspassError(ERRORS.ERR_NOT_FOUND)),
  );

  // Errors become answers in the one error responder (error-answer.ts): JSON, each logged with its
  // code, method and URL; paths and stacks go to the log only. A 416 carries its Content-Range.
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) =>
    answerError(req, res, err, { log, service: 'completion', form: 'json' }),
  );

  return app;
}
