// When the completion service runs elsewhere (docker-compose), the upload server still serves the
// page, and the page reads /api/uploads from its own origin: those GETs are passed to the service.
import express from 'express';
import type { Config } from '../config/config.ts';
import { requestStream, requestText } from '../../core/http-client.ts';
import { knownError } from '../http/error-answer.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { apiScope, authenticate } from '../auth/middleware.ts';
import { errorText } from '../../core/logger.ts';

/**
 * The upload server's access step for a record's upload (upload-access.ts): given when a pre-access hook is configured.
 */
export type RecordAccess = (req: express.Request, uploadId: string, mode: 'read' | 'write') => Promise<void>;

/**
 * What a forwarded request does to a record's file, as the service's router reads its path (case
 * insensitive, a trailing slash allowed, each segment decoded): `GET|HEAD /api/uploads/:id/file` reads
 * it, `DELETE /api/uploads/:id` removes it; the record's id, or undefined for the other requests.
 */
function fileAccessOf(method: string, pathname: string): { record: string; mode: 'read' | 'write' } | undefined {
  let segments: string[];
  try {
    segments = pathname.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (segments.at(-1) === '') segments.pop();
  const [root, api, uploads, record, file, ...rest] = segments;
  const ours = root === '' && api?.toLowerCase() === 'api' && uploads?.toLowerCase() === 'uploads';
  if (!ours || !record || rest.length) return undefined;
  if (method === 'DELETE' && file === undefined) return { record, mode: 'write' };
  if ((method === 'GET' || method === 'HEAD') && file?.toLowerCase() === 'file') return { record, mode: 'read' };
  return undefined;
}

export function apiProxy(config: Config, completionUrl: string, access?: RecordAccess): express.Router {
  const origin = new URL(completionUrl).origin;
  const router = express.Router();
  // The token and its scope are checked here, as the service checks them, before anything is
  // forwarded: a caller the service would refuse learns nothing of the service (not even whether it
  // is up). The token still goes along: the service decides what this caller may see (server/auth/).
  router.use('/api/uploads', authenticate(config, apiScope));
  // GETs (list, record, download) and DELETE of a record.
  router.all(['/api/uploads', '/api/uploads/*rest'], async (req, res, next) => {
    if (!['GET', 'HEAD', 'DELETE'].includes(req.method)) return next();
    // The URL as the service will see it: dot segments (`/api/uploads/../../readyz`, also as %2e)
    // are resolved by URL parsing, so what is forwarded must still be under /api/uploads.
    const target = new URL(req.originalUrl, origin);
    if (target.origin !== origin || !/^\/api\/uploads(?:\/|$)/i.test(target.pathname)) return next();
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'range', 'if-none-match', 'if-modified-since']) {
      const v = req.get(name);
      if (v) headers[name] = v;
    }
    try {
      // A record's file is its upload's: downloaded or removed past this server's access step (the
      // pre-access hook), as the service in this process does it (app.ts) — the service apart runs no
      // hooks. Its record names the upload. Fail closed: a record the caller cannot read (none, someone
      // else's, a token without the read scope) is answered as the service answered that, and nothing
      // is forwarded.
      const touches = access && fileAccessOf(req.method, target.pathname);
      if (touches) {
        const recordUrl = new URL(`/api/uploads/${encodeURIComponent(touches.record)}`, origin).href;
        const found = await requestText(recordUrl, { headers: pick(headers, 'authorization') });
        if (found.status !== 200) {
          res
            .status(found.status)
            .type(String(found.headers['content-type'] ?? 'application/json'))
            .send(found.body);
          return;
        }
        const uploadId = (JSON.parse(found.body) as { upload_id?: unknown }).upload_id;
        if (typeof uploadId !== 'string') throw new Error(`${recordUrl} answered a record without upload_id`);
        await access(req, uploadId, touches.mode);
      }
      const upstream = await requestStream(target.href, { method: req.method, headers });
      res.status(upstream.statusCode ?? 502);
      for (const [k, v] of Object.entries(upstream.headers)) {
        // CORS is this server's own answer to the browser's Origin (server/http/cors.ts), not the service's.
        if (
          v === undefined ||
          ['connection', 'keep-alive', 'transfer-encoding'].includes(k) ||
          k.startsWith('access-control-')
        )
          continue;
        if (k === 'vary') res.vary(String(v));
        else res.setHeader(k, v);
      }
      upstream.on('error', () => res.destroy());
      // A client gone mid-download must not leave the upstream answer paused on its pooled socket.
      res.on('close', () => {
        if (!upstream.complete) upstream.destroy();
      });
      upstream.pipe(res);
    } catch (e) {
      if (knownError(e)) return next(e);
      // The service's address and the socket's error are the operator's to read (the app's error
      // handler logs logDetail), not the caller's.
      next(new TuspassError(ERRORS.ERR_COMPLETION_UNREACHABLE, undefined, `${origin}: ${errorText(e)}`));
    }
  });
  return router;
}

const pick = (headers: Record<string, string>, name: string) =>
  headers[name] === undefined ? {} : { [name]: headers[name] };
