// The reference side: plain @tus/server + @tus/file-store on express, no hooks, no digests —
// what a user gets from the libraries alone, and what tuspass is compared against.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

export interface BenchServer {
  url: string;
  close(): Promise<void>;
}

export async function listen(handler: http.RequestListener): Promise<BenchServer> {
  const server = http.createServer(handler);
  // Uploads of a GiB take longer than node's default request timeout on a slow round.
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function startReferenceServer(storeDir: string): Promise<BenchServer> {
  const tus = new Server({ path: '/files', datastore: new FileStore({ directory: storeDir }) });
  const app = express();
  app.all(['/files', '/files/*rest'], (req, res) => {
    tus.handle(req, res).catch(() => {
      if (!res.headersSent) res.status(500).end();
    });
  });
  return listen(app);
}
