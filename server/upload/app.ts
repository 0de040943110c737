// The upload server's express app: tus at /files/, the page at /, a health check.
// tuspass's own handlers take HEAD, PATCH and final concatenation; @tus/server the rest. Nothing
// here parses bodies on the tus routes: a PATCH body streams straight into the store.
import express from 'express';
import type { Server } from '@tus/server';
import type { Locker } from '@tus/utils';
import { pageRouter } from '../../client/web/serve.ts';
import type { Config } from '../config.ts';
import { CHECKSUM_ALGORITHMS } from './checksum.ts';
import type { DigestFileStore } from './digest-store.ts';
import { finalHandler } from './final-handler.ts';
import { headHandler } from './head-handler.ts';
import { patchHandler } from './patch-handler.ts';
import { CONCAT_ROLE, concatRole, methodOverride, patchContentType, requireTusResumable } from './protocol-guards.ts';
import { TUS_PATH } from './tus-headers.ts';
import type { UploadEvents } from './upload-events.ts';

export interface UploadAppDeps {
  config: Config;
  tus: Server;
  store: DigestFileStore;
  locker: Locker;
  events: UploadEvents;
  log: (line: string) => void;
  /** Least time between post-receive notices of one upload, ms. */
  postReceiveIntervalMs?: number;
  keepPartials?: boolean;
}

export function createUploadApp(deps: UploadAppDeps): express.Express {
  const { tus, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  const handle: express.RequestHandler = (req, res) => {
    tus.handle(req, res).catch((e: Error) => {
      log(`tus ${req.method} ${req.originalUrl}: ${e.message}`);
      if (!res.headersSent) res.status(500).end();
    });
  };
  const one = `${TUS_PATH}/:id`;
  const final = finalHandler({ ...deps, keepPartials: deps.keepPartials ?? false });

  app.use(TUS_PATH, methodOverride, requireTusResumable, patchContentType, concatRole);
  app.options([TUS_PATH, `${TUS_PATH}/*rest`], (_req, res, next) => {
    // "the Server MUST include the Tus-Checksum-Algorithm header" in the OPTIONS response.
    res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    next();
  });
  app.head(one, headHandler(deps.store, deps.locker, log));
  app.patch(one, patchHandler({ ...deps, postReceiveIntervalMs: deps.postReceiveIntervalMs ?? 1000 }));
  app.post(TUS_PATH, (req, res, next) => (CONCAT_ROLE.get(req) === 'final' ? final(req, res, next) : next()));
  app.all([TUS_PATH, `${TUS_PATH}/*rest`], handle);
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(pageRouter());
  return app;
}
