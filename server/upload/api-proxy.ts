// When the completion service runs elsewhere (docker-compose), the upload server still serves the
// page, and the page reads /api/uploads from its own origin: those GETs are passed to the service.
import express from 'express';
import { requestStream } from '../../core/http-client.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';

export function apiProxy(completionUrl: string): express.Router {
  const origin = new URL(completionUrl).origin;
  const router = express.Router();
  // GETs (list, record, download) and DELETE of a record; the caller's bearer token goes along: the
  // service verifies it and decides what this caller may see (server/auth/).
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
      const upstream = await requestStream(target.href, { method: req.method, headers });
      res.status(upstream.statusCode ?? 502);
      for (const [k, v] of Object.entries(upstream.headers)) {
        // CORS is this server's own answer to the browser's Origin (server/cors.ts), not the service's.
        if (v === undefined || ['connection', 'keep-alive', 'transfer-encoding'].includes(k) || k.startsWith('access-control-')) continue;
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
      const error = new TuspassError(ERRORS.ERR_COMPLETION_UNREACHABLE, `${origin}: ${(e as Error).message}`);
      res.status(error.status).json(error);
    }
  });
  return router;
}
