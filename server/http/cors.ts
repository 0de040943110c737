// CORS for the tus routes, /api/uploads and downloads: only the origins in CORS_ORIGINS may read
// answers from a browser page. Default: none, i.e. same origin only (the page tuspass serves itself
// needs no CORS). A listed origin is echoed with `Vary: Origin`, so a cache never hands one origin's
// answer to another; `*` allows any origin, without credentials (tokens are bearer headers, not cookies).
import type express from 'express';

export interface CorsPolicy {
  any: boolean;
  origins: ReadonlySet<string>;
}

export function corsPolicy(configured: readonly string[]): CorsPolicy {
  return { any: configured.includes('*'), origins: new Set(configured.filter((o) => o !== '*')) };
}

/** The Access-Control-Allow-Origin value for a request from `origin`, or undefined: not allowed. */
export function allowedOrigin(policy: CorsPolicy, origin: string | undefined): string | undefined {
  if (policy.any) return '*';
  // Compared as sent: browsers send the serialized origin (lowercase scheme and host, no default port),
  // which is how parseOrigins stores the configured ones.
  return origin !== undefined && policy.origins.has(origin) ? origin : undefined;
}

export interface CorsRoutes {
  /** Methods a preflight allows (answered here when given; tus preflights: upload/tus/options-handler.ts). */
  methods?: string;
  /** Request headers a preflight allows. Authorization always, so a page can send its token. */
  allowHeaders?: string;
  exposeHeaders?: string;
}

/**
 * Sets the CORS answer headers for the request's origin before any handler runs, so errors carry
 * them too (a browser can read a 401 or 404 only with them). A preflight (OPTIONS with
 * Access-Control-Request-Method) is answered 204 here when `methods` is given.
 */
export function cors(policy: CorsPolicy, routes: CorsRoutes = {}): express.RequestHandler {
  return (req, res, next) => {
    const allowed = allowedOrigin(policy, req.get('origin'));
    // The answer depends on Origin whenever origins are listed: caches must key on it.
    if (!policy.any && policy.origins.size > 0) res.vary('Origin');
    if (allowed) {
      res.setHeader('Access-Control-Allow-Origin', allowed);
      if (routes.exposeHeaders) res.setHeader('Access-Control-Expose-Headers', routes.exposeHeaders);
    }
    if (req.method !== 'OPTIONS' || !routes.methods || req.get('access-control-request-method') === undefined)
      return next();
    if (allowed) {
      res.setHeader('Access-Control-Allow-Methods', routes.methods);
      res.setHeader('Access-Control-Allow-Headers', routes.allowHeaders ?? 'Authorization');
      res.setHeader('Access-Control-Max-Age', '86400');
    }
    // Not allowed: an answer without Access-Control-Allow-* is the browser's "no".
    res.status(204).end();
  };
}

/**
 * What pages on listed origins may read of every answer: its request id (request-id.ts sets it on
 * each), which Uppy and tus-js-client put in their error messages ("request id: …").
 */
export const ALWAYS_EXPOSED = ['X-Request-Id'];
/** A download's headers (server/http/download.ts), on /files/:id and /api/uploads/:id/file alike. */
export const DOWNLOAD_EXPOSED = ['Content-Disposition', 'Content-Length', 'Content-Range', 'Accept-Ranges', 'ETag'];

/** /api/uploads and its downloads: reads, ranges, and removal of a record (DELETE). */
export const API_CORS: CorsRoutes = {
  methods: 'GET, HEAD, DELETE',
  allowHeaders: 'Authorization, Range',
  exposeHeaders: [...DOWNLOAD_EXPOSED, ...ALWAYS_EXPOSED].join(', '),
};
