// Protocol checks that run before any tus handler: the request path (canonical upload ids only),
// method override, the Tus-Resumable header, integer headers, the PATCH content type, and the
// concatenation role of a creation request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { countTusError } from '../metrics.ts';
import { nonNegativeInteger, TUS_VERSION } from './tus-headers.ts';
import { corsHeaders, sendTusError } from './tus-response.ts';
import { tusPathForm } from './upload-url.ts';

/** The concatenation role a POST asked for, read once from Upload-Concat. */
export const CONCAT_ROLE = new WeakMap<IncomingMessage, 'partial' | 'final'>();

/** A refusal from our error table (never logged: it is the client's mistake, not ours). */
const refuse = (res: express.Response, req: express.Request, e: TuspassError) => sendTusError(res, req, e, () => {});

/**
 * Every /files/<...> request names an upload by its canonical id, or by nothing: anything else
 * (escapes, dot segments, a trailing slash or path, another case of /files) is 404 here, before any
 * handler takes a lock or opens a file under a second spelling of one id. OPTIONS touches no upload
 * and keeps answering CORS preflights, so a browser sees the real request's 404.
 */
export const canonicalPath: express.RequestHandler = (req, res, next) => {
  if (req.method === 'OPTIONS') return next();
  const form = tusPathForm(req.originalUrl);
  if (form === 'canonical') return next();
  refuse(res, req, form === 'undecodable' ? new TuspassError(ERRORS.ERR_URL_INVALID) : new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND));
};

/** Methods a POST may stand for. */
const OVERRIDABLE = new Set(['GET', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS', 'POST']);

/**
 * "The X-HTTP-Method-Override request header MUST be a string which MUST be interpreted as the
 * request's method by the Server, if the header is presented" — for clients whose environment
 * "does not support the PATCH or DELETE methods", which can always send POST. So it is honoured on
 * a POST only, and must name a tus method; anything else is 400 rather than ignored (ignoring it
 * would act on the method the client said not to use: a mistyped DELETE would create an upload).
 */
export const methodOverride: express.RequestHandler = (req, res, next) => {
  const override = req.get('x-http-method-override');
  if (override === undefined) return next();
  const method = override.trim().toUpperCase();
  if (req.method !== 'POST' || !OVERRIDABLE.has(method)) return refuse(res, req, new TuspassError(ERRORS.ERR_METHOD_OVERRIDE_INVALID));
  req.method = method;
  if (method === 'HEAD') headersOnly(res);
  next();
};

/**
 * A POST acting as HEAD gets a HEAD's headers, framed as what it really is: a POST answer with an
 * empty body. Node frames the answer by the method on the wire and would send a body; express
 * leaves the body out for HEAD but keeps its Content-Length — either way the next answer on the
 * connection would be misread. So: no body bytes, and Content-Length: 0.
 */
function headersOnly(res: ServerResponse): void {
  const { writeHead } = res;
  const end = res.end as (this: ServerResponse, ...args: unknown[]) => ServerResponse;
  const callbackOf = (args: unknown[]) => args.find((a): a is () => void => typeof a === 'function');
  res.writeHead = function (this: ServerResponse, status: number, ...rest: unknown[]) {
    const framing = (name: unknown) => /^(content-length|transfer-encoding)$/i.test(String(name));
    const strip = (h: unknown) => {
      // Flat [name, value, name, value, ...] (as srvx writes @tus/server's answers) or an object.
      if (Array.isArray(h)) return h.filter((_v, i) => !framing(h[i - (i % 2)]));
      if (h && typeof h === 'object') return Object.fromEntries(Object.entries(h).filter(([k]) => !framing(k)));
      return h;
    };
    this.removeHeader('Transfer-Encoding');
    // "A server MUST NOT send a Content-Length header field in any response with a status code of 1xx or 204".
    if (status === 204 || status === 304 || status < 200) this.removeHeader('Content-Length');
    else this.setHeader('Content-Length', '0');
    return writeHead.call(this, status, ...(rest.map(strip) as []));
  } as typeof res.writeHead;
  res.write = function (...args: unknown[]) {
    callbackOf(args)?.();
    return true;
  } as typeof res.write;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    const cb = callbackOf(args);
    return cb ? end.call(this, cb) : end.call(this);
  } as typeof res.end;
}

/**
 * Upload-Length and Upload-Offset are non-negative integers — decimal digits only, and no larger than
 * JavaScript counts exactly (2^53 - 1): an offset past that could not be compared or added without
 * rounding. Checked on every method, before @tus/server reads them with Number().
 */
export const safeIntegers: express.RequestHandler = (req, res, next) => {
  const length = req.get('upload-length');
  if (length !== undefined && nonNegativeInteger(length) === undefined) return refuse(res, req, new TuspassError(ERRORS.ERR_LENGTH_INVALID));
  const offset = req.get('upload-offset');
  if (offset !== undefined && nonNegativeInteger(offset) === undefined) return refuse(res, req, new TuspassError(ERRORS.ERR_OFFSET_INVALID));
  next();
};

/**
 * "The Tus-Resumable header MUST be included in every request and response except for OPTIONS
 * requests ... If the version specified by the Client is not supported by the Server, it MUST
 * respond with the 412 Precondition Failed status and MUST include the Tus-Version header".
 */
export const requireTusResumable: express.RequestHandler = (req, res, next) => {
  if (req.method === 'OPTIONS' || req.get('tus-resumable') === TUS_VERSION) return next();
  countTusError(412, 'ERR_UNSUPPORTED_VERSION'); // tusd's code for this answer
  res.status(412).set({ ...corsHeaders(), 'Tus-Version': TUS_VERSION, 'Tus-Resumable': TUS_VERSION }).type('text/plain').send(`Tus-Resumable ${TUS_VERSION} required\n`);
};

/**
 * "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise the server
 * SHOULD return a 415 Unsupported Media Type status".
 */
export const patchContentType: express.RequestHandler = (req, res, next) => {
  if (req.method !== 'PATCH') return next();
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/offset+octet-stream') return next();
  countTusError(415, 'ERR_INVALID_CONTENT_TYPE'); // tusd's code for this answer
  res.status(415).set({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION }).type('text/plain').send('Content-Type must be application/offset+octet-stream\n');
};

/** Reads Upload-Concat on creation: `partial`, `final;<urls>`, or a 400 for anything else. */
export const concatRole: express.RequestHandler = (req, res, next) => {
  const value = req.get('upload-concat');
  if (req.method !== 'POST' || value === undefined) return next();
  if (value.trim() === 'partial') {
    CONCAT_ROLE.set(req, 'partial');
    // @tus/server refuses Upload-Concat outright; it creates the partial as a plain upload, and the
    // store records the role.
    delete req.headers['upload-concat'];
    // srvx builds the web request's headers from rawHeaders (name, value, name, value, ...).
    const raw = req.rawHeaders;
    for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === 'upload-concat') raw.splice(i, 2);
    return next();
  }
  if (/^final;/.test(value.trim())) {
    CONCAT_ROLE.set(req, 'final');
    return next();
  }
  countTusError(400, ERRORS.ERR_CONCAT_INVALID.code);
  res.status(400).set({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION }).type('text/plain').send('Upload-Concat must be "partial" or "final;<url> <url> ..."\n');
};
