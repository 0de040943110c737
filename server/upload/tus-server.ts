// The @tus/server instance: creation (plain and partial), OPTIONS and termination at /files/, on our
// digesting store, with the hook events wired in. HEAD, PATCH and final concatenation are tuspass's
// own handlers (they share this server's locker).
import crypto from 'node:crypto';
import { Server } from '@tus/server';
import { EVENTS, type Locker } from '@tus/utils';
import type { Config } from '../config.ts';
import { allowedOrigin, corsPolicy } from '../cors.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { maxSizeFor } from '../auth/middleware.ts';
import { principalOf } from '../auth/principal.ts';
import type { Log } from '../../core/logger.ts';
import { requestIdOf } from '../request-id.ts';
import { countTusError, tusErrorCode, uploadsCreated, uploadsFinished, uploadsTerminated } from '../metrics.ts';
import { creationRecorded } from './admission.ts';
import type { ConcatInfo, DigestFileStore } from './digest-store.ts';
import { CONCAT_ROLE } from './protocol-guards.ts';
import { publicOrigin } from './public-origin.ts';
import { EXTRA_ALLOWED_HEADERS, EXTRA_EXPOSED_HEADERS, TUS_PATH } from './tus-headers.ts';
import { httpRequestOf, nodeRequestOf, type UploadEvents } from './upload-events.ts';


/** @tus/server creates partial uploads (never final ones): the role its request asked for. */
const partialIf = (role: 'partial' | 'final' | undefined): ConcatInfo | undefined => (role === 'partial' ? { kind: 'partial' } : undefined);

export function createTusServer(config: Config, store: DigestFileStore, events: UploadEvents, locker: Locker, log: Log = console.error): Server {
  // Metadata changed by pre-create, kept from the naming step (where the id is chosen) to creation.
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
      const role = CONCAT_ROLE.get(node);
      const length = req.headers.get('upload-length');
      const proposed = { id: crypto.randomBytes(16).toString('hex'), size: length === null ? undefined : Number(length), offset: 0, metadata };
      const chosen = await events.preCreate(httpRequestOf(node), proposed as never, partialIf(role));
      changedMeta.set(req, chosen.metadata);
      if (role === 'partial') store.announceConcat(chosen.id, { kind: 'partial' });
      // The creating subject owns the upload (plain and partial; finals in final-handler.ts).
      const owner = principalOf(node)?.sub;
      if (owner !== undefined) store.announceOwner(chosen.id, owner);
      return chosen.id;
    },

    async onUploadCreate(req) {
      return changedMeta.has(req) ? { metadata: changedMeta.get(req) } : {};
    },

    // Creation-with-upload (or Upload-Length: 0) can finish an upload in its POST.
    async onUploadFinish(req, upload) {
      const node = nodeRequestOf(req);
      uploadsFinished.inc();
      const { handled: _handled, ...answer } = await events.finish(httpRequestOf(node), upload, partialIf(CONCAT_ROLE.get(node)));
      // A POST that finishes the upload must stay 201 with its Location.
      if (answer.status_code && answer.status_code < 300) delete answer.status_code;
      return answer;
    },

    // @tus/server answers an error it does not know with the error's message, which for a file-system
    // error names the store's path: ERR_INTERNAL instead, the details in the log.
    onResponseError(req, err) {
      // tusd_errors_total for the answers @tus/server writes (ours go through sendTus).
      if (err instanceof TuspassError) {
        countTusError(err.status, err.code);
        return { status_code: err.status, body: `${err.code}: ${err.message}\n` };
      }
      if ('status_code' in err) {
        countTusError(err.status_code, tusErrorCode(err.body));
        return undefined;
      }
      countTusError(500, 'ERR_INTERNAL');
      log(`tus ${req.method} ${new URL(req.url).pathname}: ${err.stack ?? err.message}`);
      return { status_code: 500, body: 'ERR_INTERNAL: internal error\n' };
    },

    async onIncomingRequest(req, id) {
      if (req.method !== 'DELETE') return;
      const upload = await store.getUpload(id);
      // A finished upload has been announced and recorded: removing its file here would leave the
      // record dangling. It goes with its record (DELETE /api/uploads/<id>). Partials stay removable:
      // they are never recorded, only their final is.
      if (upload.size !== undefined && upload.offset === upload.size && (await store.concatOf(id))?.kind !== 'partial') {
        throw new TuspassError(ERRORS.ERR_UPLOAD_FINISHED);
      }
      await events.preTerminate(httpRequestOf(nodeRequestOf(req)), upload);
    },
  });

  server.on(EVENTS.POST_CREATE, (req, upload) => {
    const node = nodeRequestOf(req);
    // Recorded in the free-space ledger by the store now: the gate's reservation can go.
    creationRecorded(node);
    uploadsCreated.inc();
    events.created(node, upload, partialIf(CONCAT_ROLE.get(node)));
  });
  server.on(EVENTS.POST_RECEIVE, (_body, upload) => {
    // Creation-with-upload bodies: @tus/server passes the body stream here, not the request, so the
    // payload names the request by method and URI only.
    const http = { Method: 'POST', URI: `${TUS_PATH}/${upload.id}`, RemoteAddr: '', Header: {} };
    events.notify('post-receive', http, events.hookUpload(upload));
  });
  server.on(EVENTS.POST_TERMINATE, (req, _res, id) => {
    uploadsTerminated.inc();
    log(`upload ${id} terminated`, { event: 'upload.terminated', upload_id: id, request_id: requestIdOf(nodeRequestOf(req)) });
    events.notify('post-terminate', httpRequestOf(nodeRequestOf(req)), events.hookUpload({ id, offset: 0, metadata: {} } as never, undefined, false));
  });
  return server;
}
