// Protocol checks that run before any tus handler: method override, the Tus-Resumable header, the
// PATCH content type, and the concatenation role of a creation request.
import type { IncomingMessage } from 'node:http';
import type express from 'express';
import { TUS_VERSION } from './tus-headers.ts';
import { corsHeaders } from './tus-response.ts';

/** The concatenation role a POST asked for, read once from Upload-Concat. */
export const CONCAT_ROLE = new WeakMap<IncomingMessage, 'partial' | 'final'>();

/**
 * "The X-HTTP-Method-Override request header MUST be a string which MUST be interpreted as the
 * request's method by the Server, if the header is presented" — for clients behind proxies that
 * only pass GET and POST.
 */
export const methodOverride: express.RequestHandler = (req, _res, next) => {
  const override = req.get('x-http-method-override');
  if (override) req.method = override.trim().toUpperCase();
  next();
};

/**
 * "The Tus-Resumable header MUST be included in every request and response except for OPTIONS
 * requests ... If the version specified by the Client is not supported by the Server, it MUST
 * respond with the 412 Precondition Failed status and MUST include the Tus-Version header".
 */
export const requireTusResumable: express.RequestHandler = (req, res, next) => {
  if (req.method === 'OPTIONS' || req.get('tus-resumable') === TUS_VERSION) return next();
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
  res.status(400).set({ ...corsHeaders(), 'Tus-Resumable': TUS_VERSION }).type('text/plain').send('Upload-Concat must be "partial" or "final;<url> <url> ..."\n');
};
