// The @tus/server instance: creation (plain and partial), OPTIONS and termination at /files/, on our
// digesting store, with the hook events wired in. HEAD, PATCH and final concatenation are tuspass's
// own handlers (they share this server's locker).
import crypto from 'node:crypto';
import { Server } from '@tus/server';
import { EVENTS, type Locker } from '@tus/utils';
import type { Config } from '../config.ts';
import { allowedOrigin, corsPolicy } from '../cors.ts';
import { TuspassError } from '../errors.ts';
import { creationRecorded } from './admission.ts';
import type { ConcatInfo, DigestFileStore } from './digest-store.ts';
import { CONCAT_ROLE } from './protocol-guards.ts';
import { EXTRA_ALLOWED_HEADERS, EXTRA_EXPOSED_HEADERS, TUS_PATH } from './tus-headers.ts';
import { httpRequestOf, nodeRequestOf, type UploadEvents } from './upload-events.ts';


/** @tus/server creates partial uploads (never final ones): the role its request asked for. */
const partialIf = (role: 'partial' | 'final' | undefined): ConcatInfo | undefined => (role === 'partial' ? { kind: 'partial' } : undefined);

export function createTusServer(config: Config, store: DigestFileStore, events: UploadEvents, locker: Locker, log: (line: string) => void = console.error): Server {
  // Metadata changed by pre-create, kept from the naming step (where the id is chosen) to creation.
  const changedMeta = new WeakMap<object, Record<string, string | null> | undefined>();

  const origins = corsPolicy(config.corsOrigins);
  const server = new Server({
    path: TUS_PATH,
    datastore: store,
    locker,
    maxSize: config.maxSize || undefined,
    allowedHeaders: EXTRA_ALLOWED_HEADERS,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    postReceiveInterval: config.progressHooksIntervalMs,
    // CORS_ORIGINS, as on every tus route (server/cors.ts): without it @tus/server answers `*` to all.
    allowedOrigins: origins.any ? undefined : (origin) => allowedOrigin(origins, origin) !== undefined,

    // pre-create runs here because a pre-create hook may choose the upload's id (ChangeFileInfo.ID).
    async namingFunction(req, metadata) {
      const node = nodeRequestOf(req);
      const role = CONCAT_ROLE.get(node);
      const length = req.headers.get('upload-length');
      const proposed = { id: crypto.randomBytes(16).toString('hex'), size: length === null ? undefined : Number(length), offset: 0, metadata };
      const chosen = await events.preCreate(httpRequestOf(node), proposed as never, partialIf(role));
      changedMeta.set(req, chosen.metadata);
      if (role === 'partial') store.announceConcat(chosen.id, { kind: 'partial' });
      return chosen.id;
    },

    async onUploadCreate(req) {
      return changedMeta.has(req) ? { metadata: changedMeta.get(req) } : {};
    },

    // Creation-with-upload (or Upload-Length: 0) can finish an upload in its POST.
    async onUploadFinish(req, upload) {
      const node = nodeRequestOf(req);
      const { handled: _handled, ...answer } = await events.finish(httpRequestOf(node), upload, partialIf(CONCAT_ROLE.get(node)));
      // A POST that finishes the upload must stay 201 with its Location.
      if (answer.status_code && answer.status_code < 300) delete answer.status_code;
      return answer;
    },

    // @tus/server answers an error it does not know with the error's message, which for a file-system
    // error names the store's path: ERR_INTERNAL instead, the details in the log.
    onResponseError(req, err) {
      if (err instanceof TuspassError) return { status_code: err.status, body: `${err.code}: ${err.message}\n` };
      if ('status_code' in err) return undefined;
      log(`tus ${req.method} ${new URL(req.url).pathname}: ${err.stack ?? err.message}`);
      return { status_code: 500, body: 'ERR_INTERNAL: internal error\n' };
    },

    async onIncomingRequest(req, id) {
      if (req.method === 'DELETE') await events.preTerminate(httpRequestOf(nodeRequestOf(req)), await store.getUpload(id));
    },
  });

  server.on(EVENTS.POST_CREATE, (req, upload) => {
    const node = nodeRequestOf(req);
    // Recorded in the free-space ledger by the store now: the gate's reservation can go.
    creationRecorded(node);
    events.notify('post-create', httpRequestOf(node), events.hookUpload(upload, partialIf(CONCAT_ROLE.get(node))));
  });
  server.on(EVENTS.POST_RECEIVE, (_body, upload) => {
    // Creation-with-upload bodies: @tus/server passes the body stream here, not the request, so the
    // payload names the request by method and URI only.
    const http = { Method: 'POST', URI: `${TUS_PATH}/${upload.id}`, RemoteAddr: '', Header: {} };
    events.notify('post-receive', http, events.hookUpload(upload));
  });
  server.on(EVENTS.POST_TERMINATE, (req, _res, id) => {
    events.notify('post-terminate', httpRequestOf(nodeRequestOf(req)), events.hookUpload({ id, offset: 0, metadata: {} } as never, undefined, false));
  });
  return server;
}
