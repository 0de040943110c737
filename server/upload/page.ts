// Serves the upload page built by build.ts: `/` is index.html, `/assets/*` the bundle and CSS.
// Everything else, a missing asset included, falls through to the next routes (the completion
// service's API, then the server's 404).
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { Log } from '../../core/logger.ts';
import { PACKAGE_ROOT } from '../config/package-root.ts';

const DIST_DIR = path.join(PACKAGE_ROOT, 'client', 'web', 'dist');

export const PAGE_NOT_BUILT =
  `tuspass: the upload page is not built (${path.join(DIST_DIR, 'index.html')} is missing). Run \`npm run build\` ` +
  '(npm start and npm test do it for you).';

/**
 * Only this origin: the page must fetch nothing from elsewhere (no CDN), and upload names or
 * fields that slipped into HTML still could not run a script.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // blob: only for thumbnails of images the person picked (URL.createObjectURL of their own file).
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function pageRouter(log: Log): express.Router {
  const router = express.Router();
  const indexFile = path.join(DIST_DIR, 'index.html');
  if (!fs.existsSync(indexFile)) log(PAGE_NOT_BUILT, { level: 'warn' });

  router.get('/', (_req, res, next) => {
    res.set({
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-cache',
    });
    // Checked per request as well: a build run after the server started is picked up. The answer
    // names no path on this machine (the start-up line above does, for the operator).
    if (!fs.existsSync(indexFile)) return next(new TuspassError(ERRORS.ERR_PAGE_NOT_BUILT));
    res.sendFile(indexFile);
  });
  // The nginx upload module's apps listed their uploads at /table (django-nginx-upload's form links
  // there): it is the page's table of completed uploads now.
  router.get(['/table', '/table/'], (_req, res) => res.redirect(302, '/#completed'));
  // no-cache (revalidate by ETag): after a rebuild the browser gets the new bundle, without hashed names.
  // A missing asset falls through to the server's last handler: its 404 names no path on this machine.
  router.use(
    '/assets',
    express.static(path.join(DIST_DIR, 'assets'), {
      fallthrough: true,
      cacheControl: true,
      maxAge: 0,
      setHeaders: (res) => res.setHeader('X-Content-Type-Options', 'nosniff'),
    }),
  );
  return router;
}
