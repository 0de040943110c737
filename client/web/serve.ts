// Serves the upload page — placeholder until the page lands.
import express from 'express';
export function pageRouter(): express.Router {
  const router = express.Router();
  router.get('/', (_req, res) => { res.type('text/plain').send('tuspass: the page is not built yet'); });
  return router;
}
