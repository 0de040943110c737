// Protocol checks that run before any tus handler: the request path (canonical upload ids only),
// method override, the Tus-Resumable header, integer headers, the PATCH content type, the
// Upload-Concat of a creation, the header values a creation must have, and a
// creation's length past the caller's limit (the draft's creations too).
// Every refusal is one of the error table's, answered by the error responder (error-answer.ts) like any other.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { Config } from '../../config/config.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { nonNegativeInteger, TUS_VERSION } from '../../http/tus-headers.ts';
import { tusPathForm } from './upload-url.ts';
import { answerError } from '../../http/error-answer.ts';

/** A refusal from our error table (never logged: it is the client's mistake, not ours). */
const refuse = (res: express.Response, req: express.Request, e: TuspassError) =>
  answerError(req, res, e, { log: () => {}, form: 'tus' });

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
  refuse(
    res,
    req,
    form === 'undecodable' ? new TuspassError(ERRORS.ERR_URL_INVALID) : new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND),
  );
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
export function applyMethodOverride(req: express.Request, res: express.Response): TuspassError | undefined {
  const override = req.get('x-http-method-override');
  if (override === undefined) return undefined;
  const method = override.trim().toUpperCase();
  if (req.method !== 'POST' || !OVERRIDABLE.has(method)) return new TuspassError(ERRORS.ERR_METHOD_OVERRIDE_INVALID);
  req.method = method;
  if (method === 'HEAD') headersOnly(res);
  return undefined;
}

/** The override on the tus routes; the draft's routes apply the same rule (ietf/routes.ts). */
export const methodOverride: express.RequestHandler = (req, res, next) => {
  const refusal = applyMethodOverride(req, res);
  if (refusal) return refuse(res, req, refusal);
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
  res.write = ((...args: unknown[]) => {
    callbackOf(args)?.();
    return true;
  }) as typeof res.write;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    const cb = callbackOf(args);
    return cb ? end.call(this, cb) : end.call(this);
  } as typeof res.end;
}

/**
 * Upload-Length and Upload-Offset are non-negative integers — decimal digits only, and no larger than
 * JavaScript counts exactly (2^53 - 1): an offset past that could not be compared or added without
 * rounding. Checked on every method, before any handler reads them with Number().
 */
export const safeIntegers: express.RequestHandler = (req, res, next) => {
  const length = req.get('upload-length');
  if (length !== undefined && nonNegativeInteger(length) === undefined)
    return refuse(res, req, new TuspassError(ERRORS.ERR_LENGTH_INVALID));
  const offset = req.get('upload-offset');
  if (offset !== undefined && nonNegativeInteger(offset) === undefined)
    return refuse(res, req, new TuspassError(ERRORS.ERR_OFFSET_INVALID));
  next();
};

/**
 * "The Tus-Resumable header MUST be included in every request and response except for OPTIONS
 * requests ... If the version specified by the Client is not supported by the Server, it MUST
 * respond with the 412 Precondition Failed status and MUST include the Tus-Version header"
 * (the error responder adds it to ERR_UNSUPPORTED_VERSION, tusd's code for this answer).
 * GET is no tus request (the protocol has no download): a browser following a link or curl sends no
 * Tus-Resumable, so a download needs none, as tusd serves it.
 */
export const requireTusResumable: express.RequestHandler = (req, res, next) => {
  if (req.method === 'OPTIONS' || req.method === 'GET' || req.get('tus-resumable') === TUS_VERSION) return next();
  refuse(res, req, new TuspassError(ERRORS.ERR_UNSUPPORTED_VERSION));
};

/**
 * "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise the server
 * SHOULD return a 415 Unsupported Media Type status".
 */
export const patchContentType: express.RequestHandler = (req, res, next) => {
  if (req.method !== 'PATCH') return next();
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/offset+octet-stream') return next();
  refuse(res, req, new TuspassError(ERRORS.ERR_INVALID_CONTENT_TYPE));
};

/** The concatenation role a creation asks for in Upload-Concat (checked by concatHeader). */
export function concatRoleOf(req: IncomingMessage): 'partial' | 'final' | undefined {
  const value = req.headers['upload-concat'];
  if (typeof value !== 'string') return undefined;
  if (value.trim() === 'partial') return 'partial';
  return /^final;/.test(value.trim()) ? 'final' : undefined;
}

/** Upload-Concat on creation is `partial` or `final;<urls>`: 400 ERR_CONCAT_INVALID for anything else. */
export const concatHeader: express.RequestHandler = (req, res, next) => {
  if (req.method !== 'POST' || req.get('upload-concat') === undefined || concatRoleOf(req) !== undefined) return next();
  refuse(
    res,
    req,
    new TuspassError(ERRORS.ERR_CONCAT_INVALID, 'Upload-Concat must be "partial" or "final;<url> <url> ..."'),
  );
};

/**
 * The header values a plain or partial creation must have (creation-handler.ts), as tus servers
 * (tusd, @tus/server's header validation) refuse them: Upload-Length and Upload-Offset written as
 * Number() reads them back, Upload-Defer-Length 1, X-Forwarded-Proto http or https, Tus-Version
 * 1.0.0. (Upload-Metadata is refused where it is parsed: tus-headers.ts requestMetadata.) OPTIONS is
 * not checked.
 */
export const creationHeaders: express.RequestHandler = (req, res, next) => {
  // Number() read back the same: no leading zeros, no sign (safeIntegers has checked the rest).
  const canonical = (v: string | undefined) => v === undefined || String(Number(v)) === v;
  if (!canonical(req.get('upload-length'))) return refuse(res, req, new TuspassError(ERRORS.ERR_LENGTH_INVALID));
  if (!canonical(req.get('upload-offset'))) return refuse(res, req, new TuspassError(ERRORS.ERR_OFFSET_INVALID));
  // "Its value MUST be 1. If the length of an upload is not deferred, this header MUST be omitted."
  const defer = req.get('upload-defer-length');
  if (defer !== undefined && defer !== '1')
    return refuse(res, req, new TuspassError(ERRORS.ERR_LENGTH_REQUIRED, 'Upload-Defer-Length must be 1'));
  const proto = req.get('x-forwarded-proto');
  if (proto !== undefined && proto !== 'http' && proto !== 'https')
    return refuse(res, req, new TuspassError(ERRORS.ERR_HEADER_INVALID, 'X-Forwarded-Proto must be http or https'));
  const version = req.get('tus-version');
  if (version !== undefined && version !== TUS_VERSION)
    return refuse(res, req, new TuspassError(ERRORS.ERR_HEADER_INVALID, `Tus-Version must be ${TUS_VERSION}`));
  next();
};

/**
 * A creation whose Upload-Length is past the caller's limit (MAX_SIZE, or the token's max_size): 413 before anything is
 * created.
 */
export function creationLimit(config: Config): express.RequestHandler {
  return (req, _res, next) => {
    const length = nonNegativeInteger(req.get('upload-length'));
    if (length !== undefined && length > maxSizeFor(config, req)) return next(maxSizeError(config, req, length));
    next();
  };
}
