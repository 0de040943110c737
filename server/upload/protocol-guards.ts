// Checks the tus protocol asks for that @tus/server answers differently; they run before it.
import type express from 'express';

/**
 * "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise the server
 * SHOULD return a 415 Unsupported Media Type status" — @tus/server answers 400 instead.
 */
export const patchContentType: express.RequestHandler = (req, res, next) => {
  if (req.method !== 'PATCH') return next();
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/offset+octet-stream') return next();
  res.status(415).set({ 'Tus-Resumable': '1.0.0', 'Access-Control-Allow-Origin': '*' }).type('text/plain').send('Content-Type must be application/offset+octet-stream\n');
};
