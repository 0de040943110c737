// The @tus/server instance: tus 1.0.0 at /files/, our digesting store, and the hook events wired in.
import crypto from 'node:crypto';
import { EVENTS, type Upload } from '@tus/utils';
import { Server } from '@tus/server';
import { HookRejection, type HookRunner } from '../../hooks/runner.ts';
import type { HookResponse } from '../../hooks/types.ts';
import { COMPLETION_HEADER } from '../../hooks/complete-form/index.ts';
import type { Config } from '../config.ts';
import type { DigestFileStore } from './digest-store.ts';
import { hookRequest, hookUploadOf } from './hook-request.ts';

export const TUS_PATH = '/files';
const UPLOAD_ID = /^[A-Za-z0-9_-]{1,128}$/;

type TusAnswer = { status_code?: number; body?: string; headers?: Record<string, string> };

function answerOf(response: HookResponse, fallbackStatus: number): TusAnswer {
  const http = response.HTTPResponse ?? {};
  return { status_code: http.StatusCode ?? fallbackStatus, body: http.Body ?? '', headers: http.Header ?? {} };
}

/** A rejection as @tus/server expects a thrown error to look: it answers with status_code and body. */
function rejectionError(rejection: HookRejection, fallbackStatus: number): TusAnswer & { message: string } {
  const answer = answerOf(rejection.response, fallbackStatus);
  return { ...answer, body: answer.body || `${rejection.message}\n`, message: rejection.message };
}

export function createTusServer(config: Config, store: DigestFileStore, hooks: HookRunner): Server {
  const storePath = (id: string) => store.filePath(id);
  // pre-create answers, kept from the naming step (where the id is chosen) to the creation step.
  const preCreate = new WeakMap<Request, HookResponse>();

  const server = new Server({
    path: TUS_PATH,
    datastore: store,
    maxSize: config.maxSize || undefined,
    exposedHeaders: [COMPLETION_HEADER],
    postReceiveInterval: 1000,

    // pre-create runs here because a pre-create hook may choose the upload's id (ChangeFileInfo.ID).
    async namingFunction(req, metadata) {
      let id = crypto.randomBytes(16).toString('hex');
      if (!hooks.wants('pre-create')) return id;
      const length = req.headers.get('upload-length');
      const meta: Record<string, string | null> = metadata ?? {};
      const upload = hookUploadOf({ id, size: length === null ? undefined : Number(length), offset: 0, metadata: meta } as Upload, storePath);
      upload.Storage = null;
      try {
        const answer = await hooks.block(hookRequest('pre-create', req, upload));
        preCreate.set(req, answer);
        const wanted = answer.ChangeFileInfo?.ID;
        if (wanted !== undefined) {
          if (!UPLOAD_ID.test(wanted)) throw { status_code: 500, body: `pre-create hook chose an invalid upload id ${JSON.stringify(wanted)}\n` };
          id = wanted;
        }
      } catch (e) {
        if (e instanceof HookRejection) throw rejectionError(e, 400);
        throw e;
      }
      return id;
    },

    async onUploadCreate(req, upload) {
      const changed = preCreate.get(req)?.ChangeFileInfo?.MetaData;
      return changed ? { metadata: changed } : {};
    },

    // The Server MUST acknowledge successful PATCH requests with 204 — but like nginx behind
    // upload_pass, tuspass relays the completion service's answer on the final PATCH; tus clients
    // accept any 2xx there.
    async onUploadFinish(req, upload) {
      const digests = await store.digests(upload.id, upload.offset);
      const request = hookRequest('pre-finish', req, hookUploadOf(upload, storePath, digests));
      let answer: TusAnswer = {};
      try {
        if (hooks.wants('pre-finish')) answer = answerOf(await hooks.block(request), 204);
      } catch (e) {
        if (!(e instanceof HookRejection)) throw e;
        if (e.response.RejectUpload) await store.remove(upload.id);
        return answerOf(e.response, 400);
      }
      // A POST that finishes the upload (creation-with-upload) must stay 201 with its Location.
      if (req.method === 'POST' && answer.status_code && answer.status_code < 300) delete answer.status_code;
      hooks.notify({ ...request, Type: 'post-finish' });
      return answer;
    },

    async onIncomingRequest(req, id) {
      if (req.method !== 'DELETE' || !hooks.wants('pre-terminate')) return;
      const upload = await store.getUpload(id);
      try {
        await hooks.block(hookRequest('pre-terminate', req, hookUploadOf(upload, storePath)));
      } catch (e) {
        if (e instanceof HookRejection) throw rejectionError(e, 403);
        throw e;
      }
    },
  });

  server.on(EVENTS.POST_CREATE, (req, upload) => hooks.notify(hookRequest('post-create', req, hookUploadOf(upload, storePath))));
  server.on(EVENTS.POST_RECEIVE, (_body, upload) => {
    if (!hooks.wants('post-receive')) return;
    // @tus/server passes the body stream here, not the request: the payload names the PATCH by its URI.
    const http = { Method: 'PATCH', URI: `${TUS_PATH}/${upload.id}`, RemoteAddr: '', Header: {} };
    hooks.notify({ Type: 'post-receive', Event: { Upload: hookUploadOf(upload, storePath), HTTPRequest: http } });
  });
  server.on(EVENTS.POST_TERMINATE, (req, _res, id) => {
    hooks.notify(hookRequest('post-terminate', req, { ...hookUploadOf({ id, offset: 0, metadata: {} } as Upload, storePath), Storage: null }));
  });
  return server;
}
