// Runs the completion service on its own port (`tuspass completion-server`), with the SQLite catalog
// (or PostgreSQL's with DATABASE_URL).
import express from 'express';
import { listenOn } from './listen.ts';
import { countConnections } from '../ops/metrics.ts';
import { createHttpServer, stopServer } from '../http/network-timeout.ts';
import { setUpOps } from './ops-server.ts';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/config.ts';
import { createCompletionApp, type CompletionAppOptions } from '../completion/app.ts';
import { tlsServerOptions } from '../config/tls.ts';
import { fileModesOf } from '../../core/file-modes.ts';
import { openCatalog } from '../backends/catalog/sqlite-catalog.ts';
import { PgCatalog } from '../backends/catalog/pg-catalog.ts';
import { requireAuthBeyondLoopback } from '../auth/loopback.ts';
import { createLog } from '../../core/logger.ts';
import { answerError } from '../http/error-answer.ts';

export interface RunningCompletionServer {
  /** Base URL, e.g. http://127.0.0.1:1081 (the form goes to `${url}/complete/`). */
  url: string;
  /** The METRICS_PORT listener's base URL, when configured. */
  metricsUrl?: string;
  /** Stops; with `graceMs` (SHUTDOWN_TIMEOUT) forms being received get that long first. */
  close(graceMs?: number): Promise<void>;
}

export async function startCompletionServer(
  config: Config,
  options: CompletionAppOptions = {},
): Promise<RunningCompletionServer> {
  // Before anything opens: anonymous only on loopback unless ALLOW_ANONYMOUS (exit 78 otherwise).
  requireAuthBeyondLoopback(config);
  const log = createLog({ format: config.logFormat, level: config.logLevel, sink: options.log });
  // DATABASE_URL: the catalog every instance shares (PostgreSQL), waited for up to STARTUP_TIMEOUT.
  const wait = { until: Date.now() + config.startupTimeoutMs, log };
  const catalog = config.databaseUrl
    ? await PgCatalog.open(config.databaseUrl, wait)
    : openCatalog(config.catalogPath, fileModesOf(config).file);
  // The same NETWORK_TIMEOUT as the upload server: a form that stops arriving is cut.
  const service = createCompletionApp(config, catalog, { ...options, log });
  // /healthz, /readyz (the catalog answers) and /metrics first; the service's routes and its 404 after
  // (called, not mounted: a mounted app leaves unknown paths to its parent).
  const ops = setUpOps(config, { catalog, log });
  const outer = express()
    .disable('x-powered-by')
    .use(ops.routes)
    .use((req: express.Request, res: express.Response) => service(req, res));
  // The ops routes' refusals (a /metrics caller without the admin scope) answered as the service's are.
  outer.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) =>
    answerError(req, res, err, { log, service: 'completion', form: 'json' }),
  );
  const tls = tlsServerOptions(config);
  const server = createHttpServer(outer, config.networkTimeoutMs, log, tls);
  if (config.metrics) countConnections(server);
  let metricsUrl: string | undefined;
  try {
    // A busy port is named with the setting to change (listen.ts).
    await listenOn(server, config.completionPort, config.host, 'COMPLETION_PORT');
    metricsUrl = await ops.listen();
  } catch (e) {
    if (server.listening) server.close();
    await catalog.close();
    throw e;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `${tls ? 'https' : 'http'}://${host}:${port}`,
    metricsUrl,
    async close(graceMs?: number) {
      ops.stopping();
      if (graceMs === undefined) {
        // Idle keep-alive connections would hold close() open until they time out.
        const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
        server.closeAllConnections();
        await closed;
      } else await stopServer(server, graceMs, log);
      await ops.close();
      await catalog.close();
    },
  };
}
