// The upload server's express app: tus at /files/, the page at /, a health check.
// Nothing here parses bodies on the tus routes: the PATCH body streams straight into the store.
import express from 'express';
import type { Server } from '@tus/server';
import { pageRouter } from '../../client/web/serve.ts';
import { patchContentType } from './protocol-guards.ts';
import { TUS_PATH } from './tus-server.ts';

export function createUploadApp(tus: Server): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const handle: express.RequestHandler = (req, res) => {
    tus.handle(req, res).catch((e: Error) => {
      console.error(`tus ${req.method} ${req.originalUrl}: ${e.message}`);
      if (!res.headersSent) res.status(500).end();
    });
  };
  app.all([TUS_PATH, `${TUS_PATH}/*rest`], patchContentType, handle);
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(pageRouter());
  return app;
}
