// The @tus/server instance: creation (plain and partial) and OPTIONS at /files/, on our digesting
// store, with the hook events wired in. HEAD, GET, PATCH, DELETE and final concatenation are
// tuspass's own handlers (they share this server's locker). Its errors are answered by ours
// (sendTusError), so a client never reads @tus/server's wording.
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { Server } from '@tus/server';
import { ERRORS as TUS_ERRORS, EVENTS, Upload, type Locker } from '@tus/utils';
import type { Config } from '../config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { requestChecksum } from '../hashing/checksum.ts';
import { allowedOrigin, corsPolicy } from '../cors.ts';
import { maxSizeFor } from '../auth/middleware.ts';
import { errorText, pathForLog, type Log } from '../../core/logger.ts';
import { uploadsCreated, uploadsFinished } from '../metrics.ts';
import type { ConcatInfo, UploadStore } from './store/upload-store.ts';
import { concatRoleOf } from './protocol-guards.ts';
import { publicOrigin } from './public-origin.ts';
import { expiresAt } from './store/stored-upload.ts';
import { EXTRA_ALLOWED_HEADERS, EXTRA_EXPOSED_HEADERS, httpDate, nonNegativeInteger, TUS_PATH } from './tus-headers.ts';
import { sendTusError } from './tus-response.ts';
import { answerLost, BodyInterrupted, noteDropped } from '../dropped-requests.ts';
import { uploadOwnerOf } from './upload-owner.ts';
import { httpRequestOf, nodeRequestOf, type UploadEvents } from './upload-events.ts';

/**
 * Creations handed to @tus/server as partial uploads. It refuses any Upload-Concat (it looks for a
 * store extension spelled "concatentation"), and its callbacks receive only the web Request it made
 * from the node request, so the role rides beside the node request here: @tus/server gives no other
 * way to carry it from the request to namingFunction and its events.
 */
const PARTIAL = new WeakSet<IncomingMessage>();

const concatOf = (node: IncomingMessage): ConcatInfo | undefined => (PARTIAL.has(node) ? { kind: 'partial' } : undefined);

/** The upload a creation made, and its URL, by request: for its answer (below), which @tus/server writes. */
const CREATED = new WeakMap<IncomingMessage, { upload: Upload; url: string }>();

/**
 * @tus/server dates a creation's Upload-Expires EXPIRE_AFTER after the creation (and sends none with
 * EXPIRE_AFTER=0); the store's rule decides (store/stored-upload.ts expiresAt: an upload that
 * received no byte expires after EXPIRE_UNSTARTED_AFTER). "If the expiration is known at the
 * creation, the Upload-Expires header MUST be included in the response to the initial POST request."
 * srvx writes @tus/server's answer with writeHead(status, statusText, rawHeaders).
 */
function creationExpiry(req: IncomingMessage, res: ServerResponse, store: UploadStore): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, status: number, ...rest: unknown[]) {
    const raw = rest.find(Array.isArray) as string[] | undefined;
    const created = CREATED.get(req);
    if (status === 201 && raw && created) {
      const named = (name: string) => raw.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === name);
      const at = named('upload-offset');
      const offset = at < 0 ? 0 : Number(raw[at + 1]);
      const expires = expiresAt(created.upload, { size: offset, mtimeMs: Date.now() }, store.expiry);
      const i = named('upload-expires');
      if (i >= 0) raw.splice(i, 2);
      // Whole seconds, rounded up: the header never says "expired" too early.
      if (expires !== undefined) raw.push('Upload-Expires', httpDate(Math.ceil(expires / 1000) * 1000));
    }
    return (writeHead as (...args: unknown[]) => ServerResponse).call(this, status, ...rest);
  } as typeof res.writeHead;
}

/** Creations whose upload is complete and handed to onUploadFinish: an error from there is the completion's, handled again later. */
const FINISHING = new WeakSet<IncomingMessage>();

/**
 * A creation refused once its upload was made — its body past Upload-Length or the maximum size
 * (@tus/server checks both only after creating), the store full, a failing disk — is answered with
 * no Location: its client cannot resume that upload, so it goes, and with it the place it took in
 * its owner's count and the space it was owed (it would otherwise hold them until it expired).
 * Kept: a checksum mismatch's (answered with its Location), and a complete upload whose completion
 * failed (handled again). A body whose connection went goes too: its client never got the Location.
 */
async function dropRefusedCreation(store: UploadStore, req: IncomingMessage, e: unknown, log: Log): Promise<unknown> {
  const created = CREATED.get(req);
  if (!created || FINISHING.has(req)) return e;
  if (e instanceof TuspassError && e.code === ERRORS.ERR_CHECKSUM_MISMATCH.code) return e;
  await store.remove(created.upload.id).catch((failure: unknown) => log(`tus POST: removing upload ${created.upload.id} of a refused creation: ${errorText(failure)}`));
  // A body whose connection went: said as what it is, nothing of it kept.
  return e instanceof BodyInterrupted ? new BodyInterrupted(e.uploadId, e.received, 0, 0, e.logDetail ?? e.message) : e;
}

/**
 * A creation-with-upload whose connection went in the middle of its body: @tus/server ends the body
 * there as if it were whole (its abort handler), keeps what was written and "answers" 201 to no one.
 * Its client never got the Location, so nobody can resume that upload (tus-js-client creates a new
 * one): it goes, and with it the place it took in its owner's count (OWNER_MAX_OPEN) and the space it
 * was owed — kept, it would hold them until EXPIRE_AFTER. Said and counted as the dropped request it is.
 */
async function noteCutCreation(store: UploadStore, req: express.Request, res: express.Response, log: Log): Promise<void> {
  if (req.complete || !answerLost(req, res)) return;
  const id = CREATED.get(req)?.upload.id;
  if (id === undefined) return void noteDropped(req, res, new TuspassError(ERRORS.ERR_UPLOAD_INTERRUPTED), log, true);
  const upload = await store.getUpload(id).catch(() => undefined);
  const received = upload?.offset ?? 0;
  // Complete all the same (the bytes it was owed came before the cut): finished and announced, kept.
  if (FINISHING.has(req) || (upload?.size !== undefined && upload.offset === upload.size)) {
    return void noteDropped(req, res, new BodyInterrupted(id, received, received, received, 'the request body ended early'), log, true);
  }
  await store.remove(id).catch((failure: unknown) => log(`tus POST: removing upload ${id} of a cut creation: ${errorText(failure)}`));
  noteDropped(req, res, new BodyInterrupted(id, received, 0, 0, 'the request body ended early'), log, false);
}

/**
 * The route handler that hands a request (a creation, an OPTIONS) to @tus/server. A partial
 * creation loses its Upload-Concat on the way (above); srvx builds the web request's headers from
 * rawHeaders (name, value, name, value, ...). Every error of @tus/server's comes back here
 * (onResponseError rethrows it) and is answered by sendTusError, as every other tus route's.
 */
export function tusServerHandler(tus: Server, store: UploadStore, log: Log): express.RequestHandler {
  return (req, res) => {
    if (req.method === 'POST') creationExpiry(req, res, store);
    if (req.method === 'POST' && concatRoleOf(req) === 'partial') {
      PARTIAL.add(req);
      delete req.headers['upload-concat'];
      const raw = req.rawHeaders;
      for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === 'upload-concat') raw.splice(i, 2);
    }
    tus.handle(req, res).then(() => noteCutCreation(store, req, res, log)).catch(async (e: unknown) => {
      // A creation-with-upload whose body did not match its checksum keeps the upload it created, at
      // offset 0 (as a PATCH leaves the offset unchanged; tusd does the same), and says where it is.
      const created = CREATED.get(req);
      if (created && e instanceof TuspassError && e.code === ERRORS.ERR_CHECKSUM_MISMATCH.code) Object.assign(e, { headers: { Location: created.url } });
      // Once headers went out the client may hold the Location: only an unanswered creation is dropped.
      if (!res.headersSent) return sendTusError(res, req, await dropRefusedCreation(store, req, e, log), log);
      log(`tus ${req.method} ${pathForLog(req.originalUrl)}: ${errorText(e)}`);
      res.destroy();
    });
  };
}

export function createTusServer(config: Config, store: UploadStore, events: UploadEvents, locker: Locker): Server {
  // Metadata changed by pre-create, kept from the naming step (where the id is chosen) to creation:
  // namingFunction returns only the id, so the metadata waits here, keyed by @tus/server's web
  // request (it offers no other way from one callback to the next).
  const changedMeta = new WeakMap<object, Record<string, string | null> | undefined>();

  const origins = corsPolicy(config.corsOrigins);
  const server = new Server({
    path: TUS_PATH,
    datastore: store,
    locker,
    // MAX_SIZE, or the token's max_size when smaller: also bounds a creation-with-upload body of
    // deferred length (tuspass's own guard answers a too large Upload-Length before this runs).
    maxSize: (req) => {
      const limit = maxSizeFor(config, nodeRequestOf(req));
      return Number.isFinite(limit) ? limit : 0;
    },
    allowedHeaders: EXTRA_ALLOWED_HEADERS,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    postReceiveInterval: config.progressHooksIntervalMs,
    // CORS_ORIGINS, as on every tus route (server/cors.ts): without it @tus/server answers `*` to all.
    allowedOrigins: origins.any ? undefined : (origin) => allowedOrigin(origins, origin) !== undefined,
    // Location as our own handlers make upload URLs: https on TLS (@tus/server would say http), and
    // X-Forwarded-* / Forwarded only with BEHIND_PROXY (public-origin.ts).
    generateUrl(req, { path, id }) {
      const { proto, host } = publicOrigin(nodeRequestOf(req), config.behindProxy);
      return `${proto}://${host}${path}/${id}`;
    },

    // pre-create runs here because a pre-create hook may choose the upload's id (ChangeFileInfo.ID).
    async namingFunction(req, metadata) {
      const node = nodeRequestOf(req);
      // creation-with-upload: its body is checked against Upload-Checksum as a PATCH's is (a
      // malformed header is 400 before anything is created; a mismatch 460, nothing of the body kept).
      const withBody = node.headers['content-type'] === 'application/offset+octet-stream';
      const checksum = withBody ? await requestChecksum(node.headers['upload-checksum'] as string | undefined) : undefined;
      const concat = concatOf(node);
      const length = req.headers.get('upload-length');
      const proposed = new Upload({ id: crypto.randomBytes(16).toString('hex'), size: length === null ? undefined : Number(length), offset: 0, metadata });
      const chosen = await events.preCreate(httpRequestOf(node), proposed, concat);
      changedMeta.set(req, chosen.metadata);
      if (concat) store.announceConcat(chosen.id, concat);
      // The creating subject owns the upload (plain and partial; finals in final-handler.ts).
      store.announceOwner(chosen.id, uploadOwnerOf(node, config.behindProxy));
      if (withBody) {
        const withdraw = store.announceBody(chosen.id, { checksum, expected: nonNegativeInteger(node.headers['content-length']) });
        (node as Partial<express.Request>).res?.once('close', withdraw);
      }
      return chosen.id;
    },

    async onUploadCreate(req) {
      return changedMeta.has(req) ? { metadata: changedMeta.get(req) } : {};
    },

    // Creation-with-upload (or Upload-Length: 0) can finish an upload in its POST.
    async onUploadFinish(req, upload) {
      const node = nodeRequestOf(req);
      FINISHING.add(node);
      uploadsFinished.inc();
      const { handled: _handled, ...answer } = await events.finish(httpRequestOf(node), upload, concatOf(node));
      // A POST that finishes the upload must stay 201 with its Location.
      if (answer.status_code && answer.status_code < 300) delete answer.status_code;
      return answer;
    },

    // Every error @tus/server would answer (its own table's, a hook's refusal, ours thrown from the
    // callbacks above, a file-system error naming the store's path) goes back to tusServerHandler,
    // to be answered by sendTusError like every other tus route's: one format, one count, and no
    // @tus/server wording or path reaches a client. (Its answers to malformed headers skip this
    // callback; protocol-guards.ts creationHeaders refuses those first.)
    onResponseError(_req, err) {
      throw err;
    },
  });

  server.on(EVENTS.POST_CREATE, (req, upload, url) => {
    const node = nodeRequestOf(req);
    CREATED.set(node, { upload, url });
    uploadsCreated.inc();
    events.created(node, upload, concatOf(node));
  });
  server.on(EVENTS.POST_RECEIVE, (_body, upload) => {
    // Creation-with-upload bodies: @tus/server passes the body stream here, not the request, so the
    // payload names the request by method and URI only.
    const http = { Method: 'POST', URI: `${TUS_PATH}/${upload.id}`, RemoteAddr: '', Header: {} };
    events.notify('post-receive', http, events.hookUpload(upload));
  });
  return server;
}
