// The adapter around @tus/server, tuspass's creation engine: creation (plain, partial, with upload)
// and OPTIONS at /files/ go through it; HEAD, GET, PATCH, DELETE and final concatenation are
// tuspass's own handlers (they share its locker). Everything that depends on how @tus/server or
// @tus/file-store work inside — the order of PostHandler's calls, the headers it reads from
// rawHeaders, srvx's node request behind the web Request, FileStore's private directory step — is
// in this folder, and test/tus-engine-contract.test.ts checks each of those against the installed
// versions. The rest of the server sees createTusEngine, EngineFileStore and MemoryLocker only (the
// contract test checks that nothing else imports @tus/server or @tus/file-store).
//
//   creations.ts        one creation, followed from the node request to the store and back
//   creation-store.ts   the datastore @tus/server is given (the store, completed by the creation)
//   creation-answers.ts Upload-Expires, refused and cut creations
//   web-request.ts      the node request behind @tus/server's web Request
//   file-store.ts       the store's base class (FileStore's private directory step replaced)
import crypto from 'node:crypto';
import type express from 'express';
import { Server } from '@tus/server';
import { EVENTS, Upload, type Locker } from '@tus/utils';
import type { Config } from '../../../config/config.ts';
import type { TuspassError } from '../../../../core/errors.ts';
import { requestChecksum } from '../../../hashing/checksum.ts';
import { allowedOrigin, corsPolicy } from '../../../http/cors.ts';
import { maxSizeFor } from '../../../auth/middleware.ts';
import { errorText, pathForLog, type Log } from '../../../../core/logger.ts';
import { uploadsCreated, uploadsFinished } from '../../../ops/metrics.ts';
import type { UploadStore } from '../../../backends/store/upload-store.ts';
import { concatRoleOf } from '../protocol-guards.ts';
import { publicOrigin } from '../../../http/public-origin.ts';
import {
  EXTRA_ALLOWED_HEADERS,
  EXTRA_EXPOSED_HEADERS,
  nonNegativeInteger,
  TUS_PATH,
} from '../../../http/tus-headers.ts';
import { uploadOwnerOf } from '../../../auth/upload-owner.ts';
import { httpRequestOf, type UploadEvents } from '../../../pipeline/upload-events.ts';
import { creationExpiry, dropRefusedCreation, keptAfterMismatch, noteCutCreation } from './creation-answers.ts';
import { CreationStore } from './creation-store.ts';
import { Creations, type Creation } from './creations.ts';
import { nodeRequestOf } from './web-request.ts';
import { answerError } from '../../../http/error-answer.ts';

export { EngineFileStore } from '../../../backends/store/file-store.ts';
/** The locker of a single instance (without REDIS_URL), shared by @tus/server and tuspass's own handlers. */
export { MemoryLocker } from '@tus/server';

/**
 * The versions this adapter was checked against (package.json must ask for these ranges; the
 * contract test fails otherwise): a new major of either may change any of what is relied on here.
 */
export const ENGINE_VERSIONS = {
  '@tus/server': '^2.4.5',
  '@tus/file-store': '^2.1.1',
  '@tus/utils': '^0.7.1',
} as const;

export interface TusEngineDeps {
  config: Config;
  store: UploadStore;
  events: UploadEvents;
  /** Shared with tuspass's own handlers: requests on one upload never interleave. */
  locker: Locker;
  log: Log;
}

/**
 * The route handler that hands a creation (POST on the collection) or an OPTIONS to @tus/server.
 * Every error of @tus/server's comes back here (onResponseError rethrows it) and is answered by
 * the error responder (error-answer.ts answerError) as every other tus route's: one format, one
 * count, no @tus/server wording.
 */
export function createTusEngine(deps: TusEngineDeps): express.RequestHandler {
  const { store, log } = deps;
  const creations = new Creations();
  const tus = engineServer(deps, creations);
  return (req, res) => {
    let creation: Creation | undefined;
    if (req.method === 'POST') {
      // @tus/server refuses any Upload-Concat (it looks for a store extension spelled
      // "concatentation"): a partial creation reaches it without the header, its role carried by
      // the creation. srvx builds the web request's headers from rawHeaders (name, value, ...).
      const partial = concatRoleOf(req) === 'partial';
      creation = creations.begin(req, partial ? { kind: 'partial' } : undefined);
      creationExpiry(creation, res, store);
      if (partial) {
        delete req.headers['upload-concat'];
        const raw = req.rawHeaders;
        for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === 'upload-concat') raw.splice(i, 2);
      }
    }
    // Settled only once @tus/server is done with the request (a cut body included): then nothing of
    // the creation is kept.
    const handled = tus.handle(req, res).finally(() => creation && creations.end(creation));
    handled
      .then(() => noteCutCreation(store, creation, req, res, log))
      .catch(async (e: unknown) => {
        // A creation kept after its body failed its checksum says where its upload is.
        const made = creation?.made;
        if (made && keptAfterMismatch(creation, e))
          Object.assign(e as TuspassError, { headers: { Location: made.url } });
        // Once headers went out the client may hold the Location: only an unanswered creation is dropped.
        if (!res.headersSent) {
          return answerError(req, res, await dropRefusedCreation(store, creation, e, log), { log, form: 'tus' });
        }
        log(`tus ${req.method} ${pathForLog(req.originalUrl)}: ${errorText(e)}`);
        res.destroy();
      });
  };
}

function engineServer({ config, store, events, locker }: TusEngineDeps, creations: Creations): Server {
  /** The creation a callback's web request belongs to (begun by the route handler above). */
  const creationOf = (req: Request): Creation => {
    const creation = creations.of(nodeRequestOf(req));
    if (!creation) throw new Error('@tus/server ran a creation callback for a request the adapter did not begin');
    return creation;
  };
  const origins = corsPolicy(config.corsOrigins);
  const server = new Server({
    path: TUS_PATH,
    datastore: new CreationStore(store, creations),
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
    // CORS_ORIGINS, as on every tus route (server/http/cors.ts): without it @tus/server answers `*` to all.
    allowedOrigins: origins.any ? undefined : (origin) => allowedOrigin(origins, origin) !== undefined,
    // Location as our own handlers make upload URLs: https on TLS (@tus/server would say http), and
    // X-Forwarded-* / Forwarded only with BEHIND_PROXY (public-origin.ts).
    generateUrl(req, { path, id }) {
      const { proto, host } = publicOrigin(nodeRequestOf(req), config.behindProxy);
      return `${proto}://${host}${path}/${id}`;
    },

    // pre-create runs here because a pre-create hook may choose the upload's id (ChangeFileInfo.ID);
    // namingFunction returns only the id, so the rest waits on the creation for onUploadCreate.
    async namingFunction(req, metadata) {
      const creation = creationOf(req);
      const node = creation.node;
      // creation-with-upload: its body is checked against Upload-Checksum as a PATCH's is (a
      // malformed header is 400 before anything is created; a mismatch 460, nothing of the body kept).
      const withBody = node.headers['content-type'] === 'application/offset+octet-stream';
      const header = node.headers['upload-checksum'] as string | undefined;
      const checksum = withBody ? await requestChecksum(header) : undefined;
      const length = req.headers.get('upload-length');
      const size = length === null ? undefined : Number(length);
      const proposed = new Upload({ id: crypto.randomBytes(16).toString('hex'), size, offset: 0, metadata });
      const chosen = await events.preCreate(httpRequestOf(node), proposed, creation.concat);
      creation.metadata = chosen.metadata;
      // The creating subject owns the upload (plain and partial; finals in final-handler.ts).
      creation.info = { owner: uploadOwnerOf(node, config.behindProxy), concat: creation.concat };
      if (withBody) creation.body = { checksum, expected: nonNegativeInteger(node.headers['content-length']) };
      return chosen.id;
    },

    // The Upload handed here is the one store.create receives next (creation-store.ts finds the
    // creation by it).
    async onUploadCreate(req, upload) {
      const creation = creationOf(req);
      creations.bind(upload, creation);
      return { metadata: creation.metadata };
    },

    // Creation-with-upload (or Upload-Length: 0) can finish an upload in its POST.
    async onUploadFinish(req, upload) {
      const creation = creationOf(req);
      creation.finishing = true;
      uploadsFinished.inc();
      const http = httpRequestOf(creation.node);
      const { handled: _handled, ...answer } = await events.finish(http, upload, creation.concat);
      // A POST that finishes the upload must stay 201 with its Location.
      if (answer.status_code && answer.status_code < 300) delete answer.status_code;
      return answer;
    },

    // Every error @tus/server would answer (its own table's, a hook's refusal, ours thrown from the
    // callbacks above, a file-system error naming the store's path) goes back to the route handler,
    // to be answered by the error responder like every other tus route's. (Its answers to malformed headers
    // skip this callback; protocol-guards.ts creationHeaders refuses those first.)
    onResponseError(_req, err) {
      throw err;
    },
  });

  server.on(EVENTS.POST_CREATE, (req, upload, url) => {
    const creation = creationOf(req);
    creation.made = { upload, url };
    uploadsCreated.inc();
    events.created(creation.node, upload, creation.concat);
  });
  server.on(EVENTS.POST_RECEIVE, (_body, upload) => {
    // Creation-with-upload bodies: @tus/server passes the body stream here, not the request, so the
    // payload names the request by method and URI only.
    const http = { Method: 'POST', URI: `${TUS_PATH}/${upload.id}`, RemoteAddr: '', Header: {} };
    events.notify('post-receive', http, events.hookUpload(upload));
  });
  return server;
}
